/**
 * The device authorization grant (RFC 8628) for certbridge-proxy-init: the
 * terminal shows a short user code and a URL; the person opens the URL in any
 * browser, enters or confirms the code, signs in and consents. These are the
 * pages oidc-provider renders for that (code entry, confirmation, success), in
 * the portal's style. Every value is escaped; the forms come from
 * oidc-provider (they carry its XSRF token).
 *
 * Phishing (RFC 8628 §5.4): a code can be relayed by an attacker, so the
 * confirmation page names the client, shows where the request came from, and
 * says to continue only for a login the person just started; the consent page
 * shows the code once more (lib/portal.ts interactionView).
 */
import type { Configuration, KoaContextWithOIDC } from "oidc-provider";
import { escapeHtml, portalPage } from "./pages";
import { displayText } from "../displayText";

type DeviceFlowFeature = NonNullable<NonNullable<Configuration["features"]>["deviceFlow"]>;

/** RFC 8628 §6.1: 8 characters of base-20 (no vowels, no look-alikes) is about 34.5 bits. */
export const USER_CODE_MASK = "****-****";
/** How long a device code may wait for the person (RFC 8628 §3.2 expires_in). */
export const DEVICE_CODE_TTL_SECONDS = 600;

function inputErrorMessage(err: Error | undefined): string | null {
  if (!err) return null;
  switch (err.name) {
    case "NoCodeError":
      return "Enter the code shown in your terminal.";
    case "NotFoundError":
      return "This code is not known. Check it against your terminal and try again.";
    case "ExpiredError":
      return "This code has expired. Start the login in your terminal again for a new one.";
    case "AlreadyUsedError":
      return "This code has already been used. Start the login in your terminal again for a new one.";
    case "AbortedError":
      return "The terminal login was cancelled. Nothing was issued.";
    default:
      return "The code could not be checked. Try again.";
  }
}

/** Set on the Koa state when a user code was not found: lib/limits/oidcLimits.ts counts it (RFC 8628 §5.1). */
export const WRONG_USER_CODE = "certbridgeWrongUserCode";

export function deviceFlowFeature(opts: { devBanner: boolean }): DeviceFlowFeature {
  const render = (ctx: KoaContextWithOIDC, title: string, body: string) => {
    ctx.type = "html";
    ctx.set("cache-control", "no-store");
    ctx.body = portalPage(title, body, { devBanner: opts.devBanner });
  };
  return {
    enabled: true,
    charset: "base-20",
    mask: USER_CODE_MASK,
    // The address as the server entry resolved it (trusted proxies only, lib/limits/clientIp.ts), not Koa's left-most X-Forwarded-For.
    deviceInfo: (ctx) => ({ ip: ctx.get("x-certbridge-client-ip") || ctx.ip, ua: ctx.get("user-agent") }),
    userCodeInputSource(ctx, form, _out, err) {
      if (err?.name === "NotFoundError") (ctx.state as Record<string, unknown>)[WRONG_USER_CODE] = true;
      const message = inputErrorMessage(err);
      render(
        ctx,
        "Terminal login",
        `<h1>Sign in to a terminal</h1>
${message ? `<p class="warning" role="alert">${escapeHtml(message)}</p>` : ""}
<p>Enter the code that your terminal shows (<code>certbridge-proxy-init</code>, <code>oidc-gen</code>, …).</p>
${withoutInlineHandlers(form)}
<div class="actions"><button type="submit" form="op.deviceInputForm" class="primary">Continue</button></div>`,
      );
    },
    userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
      const name = displayText(client.clientName ?? client.clientId);
      const ip = typeof deviceInfo.ip === "string" ? deviceInfo.ip : null;
      // The User-Agent is whatever the requester sent: shown as text, without hidden or bidi controls, bounded.
      const ua = typeof deviceInfo.ua === "string" ? displayText(deviceInfo.ua, 200) : null;
      render(
        ctx,
        "Confirm terminal login",
        `<h1>Is this your terminal?</h1>
<p>A command-line program, <strong>${escapeHtml(name)}</strong>, asks to sign in as you. Your terminal must show this code:</p>
<p class="user-code"><code id="user-code">${escapeHtml(userCode)}</code></p>
${ip || ua ? `<p class="muted">The request came from ${ip ? `<code>${escapeHtml(ip)}</code>` : "an unknown address"}${ua ? ` (${escapeHtml(ua)})` : ""}.</p>` : ""}
<p class="warning">Continue only if you started this login yourself, just now, and the codes match. If someone sent you this link or code, choose <em>Cancel</em>.</p>
${form}
<div class="actions"><button type="submit" form="op.deviceConfirmForm" class="primary">Continue</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Cancel</button></div>`,
      );
    },
    successSource(ctx) {
      render(
        ctx,
        "Terminal signed in",
        `<h1>Your terminal is signed in</h1>
<p>Return to your terminal: the program that showed the code (<code>certbridge-proxy-init</code>, <code>oidc-gen</code>, …) now receives its tokens. You can close this page.</p>`,
      );
    },
  };
}

/** The user code as the terminal shows it: oidc-provider stores it normalised (no dash), the mask puts it back. */
export function formatUserCode(normalized: string): string {
  let i = 0;
  let out = "";
  for (const c of USER_CODE_MASK) {
    if (c === "*") out += normalized[i++] ?? "";
    else out += c;
  }
  return out + normalized.slice(i);
}

/**
 * oidc-provider's code entry form selects the field's text with an inline `onfocus` handler, which
 * the pages' CSP (lib/webHardening.ts: no inline script) refuses: drop the attribute rather than
 * loosen the policy (the field keeps `autofocus`).
 */
function withoutInlineHandlers(form: string): string {
  return form.replace(/\son[a-z]+="[^"]*"/g, "");
}
