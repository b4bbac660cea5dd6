/**
 * Response headers and request checks every HTTP response of the portal gets, whichever handler
 * (Next, oidc-provider, the development IdP, /getproxy) answers it (issue 12). Applied by the
 * server entry before it dispatches.
 *
 * - Framing: `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'` (CSP Level 3 §6.4.2) — the
 *   device confirmation and consent pages cannot be clickjacked.
 * - A CSP on every page. Pages rendered outside Next (lib/oidc/pages.ts) load nothing inline but
 *   one style block, allowed by its hash; oidc-provider adds the hash of its form_post script to
 *   `script-src` itself. Next's App Router streams inline bootstrap scripts, so its pages allow
 *   'unsafe-inline' scripts from this origin (nonces would force every page to render dynamically);
 *   nothing else (no eval, no other origin, no plugins, no <base>).
 * - HSTS (RFC 6797) when the public URL is https.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { PAGE_STYLE_SOURCE } from "./oidc/pages";

const COMMON = ["base-uri 'none'", "object-src 'none'", "frame-ancestors 'none'", "img-src 'self' data:", "font-src 'self'", "connect-src 'self'"];

/** Pages of the Next app (consoles, consent, sign-in, errors). */
export const NEXT_CSP = ["default-src 'self'", "script-src 'self' 'unsafe-inline'", "style-src 'self' 'unsafe-inline'", ...COMMON].join("; ");

/** Pages rendered by oidc-provider and the development IdP (and every JSON answer of the server entry). */
export const PLAIN_CSP = ["default-src 'none'", "script-src 'self'", `style-src 'self' ${PAGE_STYLE_SOURCE}`, ...COMMON].join("; ");

export const HSTS = "max-age=31536000";

export function setSecurityHeaders(res: ServerResponse, opts: { next: boolean; https: boolean }): void {
  res.setHeader("x-frame-options", "DENY");
  res.setHeader("x-content-type-options", "nosniff");
  res.setHeader("referrer-policy", "same-origin");
  res.setHeader("content-security-policy", opts.next ? NEXT_CSP : PLAIN_CSP);
  if (opts.https) res.setHeader("strict-transport-security", HSTS);
}

/**
 * More than one Authorization header (RFC 9110 §5.3: a field that is not a list must not be
 * repeated). Node's parser would silently keep one of them, so two parties could each believe
 * their credential was the one used: refuse the request instead (the caller answers 400).
 */
export function hasDuplicateAuthorization(req: IncomingMessage): boolean {
  let seen = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() === "authorization" && ++seen > 1) return true;
  }
  return false;
}

/** How long a refused upload's sender has to read the 413 before the connection is dropped. */
const REFUSED_BODY_GRACE_MS = 1_000;

/**
 * A 413 (body too large) from any handler ends the connection, without reading the rest of a body
 * that will never be used: `Connection: close` on the answer, the reading handler has paused the
 * request (lib/requestBody.ts), and once the answer is out the connection is half-closed and
 * dropped after a grace period.
 *
 * Node ends a connection that is not kept alive with `socket.destroySoon()`: a FIN, then a
 * destroy as soon as it is written. With the sender still streaming, that destroy finds unread
 * input and the kernel sends a reset (RFC 1122 §4.2.2.13), and a reset makes the sender's kernel
 * drop what it had received but not yet read — the 413 itself, for about half of the refused
 * uploads in a loop here. So this socket lingers instead: FIN after the answer, then the grace
 * period for the sender to read it (it is not read from meanwhile: its buffers fill and it
 * stops), then destroy.
 */
export function closeAfterRefusedBody(req: IncomingMessage, res: ServerResponse): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse["writeHead"]>) {
    if (args[0] === 413) {
      this.setHeader("connection", "close");
      this.shouldKeepAlive = false;
      const socket = req.socket as Socket & { destroySoon?: () => void };
      socket.destroySoon = () => lingerThenClose(socket);
    }
    return writeHead.apply(this, args);
  } as ServerResponse["writeHead"];
}

function lingerThenClose(socket: Socket): void {
  socket.end();
  const drop = setTimeout(() => socket.destroy(), REFUSED_BODY_GRACE_MS).unref();
  socket.once("close", () => clearTimeout(drop));
}
