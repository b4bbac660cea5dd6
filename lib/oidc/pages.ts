/**
 * The few HTML pages rendered outside Next (by oidc-provider itself and by
 * the embedded development IdP). Every interpolated value is escaped.
 */
import { createHash } from "node:crypto";

export const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

const STYLE = `body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.5}
.dev{background:#b00020;color:#fff;padding:.5rem 1rem;font-weight:700;border-radius:4px}
button{font-size:1rem;padding:.5rem 1rem;margin:.25rem 0;cursor:pointer}
code{background:#f2f2f2;padding:0 .25rem}`;

/** The CSP source for the one inline style block above (CSP Level 3 §8.3 hash-source): no 'unsafe-inline'. */
export const PAGE_STYLE_SOURCE = `'sha256-${createHash("sha256").update(STYLE, "utf8").digest("base64")}'`;

export function page(title: string, body: string, opts: { devBanner?: boolean } = {}): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>
${opts.devBanner ? '<p class="dev" role="alert">DEVELOPMENT IdP: test users only, anyone can log in. Never use in production.</p>' : ""}
<h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

/** An error for people, in the portal's own look (header, card, portal.css). */
export function errorPage(error: string, description: string, title = "Sign-in could not be completed"): string {
  return portalPage(title, `<h1>${escapeHtml(title)}</h1><p role="alert">${escapeHtml(description)}</p><p class="hint">(${escapeHtml(error)})</p><p><a href="/">Back to the portal</a></p>`);
}

/**
 * A page in the portal's own look (public/portal.css, the header and card of
 * app/layout.tsx), for the pages oidc-provider renders itself, such as the
 * device flow's code entry (RFC 8628 §3.3). `body` must already be escaped.
 */
export function portalPage(title: string, body: string, opts: { devBanner?: boolean } = {}): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)} - Certbridge</title><link rel="stylesheet" href="/portal.css"></head><body>
${opts.devBanner ? '<p class="dev-banner" role="alert">Development mode: sign-in uses the embedded test IdP. Certificates from this portal are for testing only.</p>' : ""}
<header class="site"><a href="/" class="brand">Certbridge</a></header>
<main class="card">${body}</main></body></html>`;
}

/** oidc-provider's RP-initiated logout confirmation (OpenID Connect RP-Initiated Logout 1.0 §2), in the portal's look. */
export function logoutConfirmPage(form: string, opts: { devBanner?: boolean } = {}): string {
  return portalPage(
    "Sign out?",
    `<h1>Sign out?</h1><p>The application you came from asks to end your sign-in at this portal.</p>${form}<p class="actions"><button type="submit" form="op.logoutForm" value="yes" name="logout" class="primary">Sign out</button><button type="submit" form="op.logoutForm">Stay signed in</button></p>`,
    opts,
  );
}

/** After a logout without a registered post_logout_redirect_uri. */
export function loggedOutPage(opts: { devBanner?: boolean } = {}): string {
  return portalPage("Signed out", `<h1>Signed out</h1><p>Your sign-in here has ended.</p><p><a href="/">Back to the portal</a></p>`, opts);
}
