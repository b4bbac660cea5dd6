import { portal } from "../../../lib/runtime";
import { consoleForm } from "../../../lib/http";
import { escapeHtml, portalPage } from "../../../lib/oidc/pages";

/** A one-time MyProxy retrieval code: shown in this response only (never in a URL, stored as a hash). */
export async function POST(request: Request) {
  return consoleForm(request, "/account#myproxy", async (req) => {
    const p = portal();
    const c = await p.console.account.createMyProxyCode(req);
    const body = `<h1>MyProxy retrieval code</h1>
<p>Your one-time code is:</p><p><code class="secret" id="myproxy-code">${escapeHtml(c.code)}</code></p>
<p><strong>Copy it now.</strong> It is shown only this once, works for one retrieval, and expires at ${escapeHtml(c.expiresAt.toISOString())}.</p>
<p>Use it as the passphrase (typed at the prompt, or on stdin with <code>-S</code>):</p>
<pre><code>${escapeHtml(c.command)}</code></pre>
<p><a href="/account#myproxy">Back to your account</a></p>`;
    return new Response(portalPage("MyProxy retrieval code", body, { devBanner: p.devIdpEnabled }), {
      headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
    });
  });
}
