import { portal } from "../../../../../lib/runtime";
import { clientIp, htmlError } from "../../../../../lib/http";
import { escapeHtml, page } from "../../../../../lib/oidc/pages";
import { SECRET_FLASH_COOKIE } from "../../../../../lib/console";

/** The only time a client secret is shown: this response also deletes the cookie that carried it. */
export async function GET(request: Request, { params }: { params: Promise<{ id: string }> }) {
  try {
    const { id } = await params;
    const p = portal();
    const cookie = request.headers.get("cookie") ?? "";
    await p.console.gate.require({ cookie, ip: clientIp(request) }, "admin", "client.secret.view");
    const secret = p.console.gateways.openSecretFlash(cookie, id);
    const body = secret
      ? `<p>The client secret of <code>${escapeHtml(id)}</code> is:</p><p><code class="secret">${escapeHtml(secret)}</code></p>
<p><strong>Copy it now.</strong> It is shown only this once; the portal keeps it encrypted and cannot display it again. If it is lost, rotate it.</p>`
      : `<p>The secret of <code>${escapeHtml(id)}</code> was already shown. If it was not copied, rotate it on the gateway's page.</p>`;
    return new Response(page("Client secret", `${body}<p><a href="/admin/clients/${encodeURIComponent(id)}">Continue to the gateway</a></p>`), {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "set-cookie": `${SECRET_FLASH_COOKIE}=; Path=/admin/clients/${encodeURIComponent(id)}/secret; Max-Age=0; HttpOnly; SameSite=Lax${p.secureCookies ? "; Secure" : ""}`,
      },
    });
  } catch (e) {
    return htmlError(e, "Not allowed");
  }
}
