/**
 * Limits and metrics on oidc-provider's endpoints, as one Koa middleware in
 * front of its routes (the provider's configuration stays in
 * lib/oidc/provider.ts):
 *  - /oidc/token (and introspection, revocation): requests per IP and per
 *    client; wrong client credentials (401 invalid_client) lock out the IP
 *    and the client_id for the window;
 *    device-code polls faster than the announced interval get RFC 8628 §3.5
 *    `slow_down`;
 *  - /oidc/device/auth: requests per IP and per client (each stores a device
 *    code); the response gains RFC 8628 §3.2 `interval`;
 *  - /oidc/device (user-code entry): wrong codes per IP and from everywhere
 *    lock out (RFC 8628 §5.1);
 *  - /oidc/auth: requests per IP (each stores an interaction).
 * The body of /oidc/token and /oidc/device/auth is read here (client_id,
 * grant_type, device_code are in it) and handed to the provider as read.
 */
import crypto from "node:crypto";
import type { IncomingMessage } from "node:http";
import type Provider from "oidc-provider";
import type { KoaContextWithOIDC } from "oidc-provider";
import { errorPage } from "../oidc/pages";
import { WRONG_USER_CODE } from "../oidc/deviceFlow";
import { metrics } from "../metrics";
import { limitedResult, type LimitDecision, type RateLimiter } from "./limiter";

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const GRANT_LABELS = new Set(["authorization_code", "refresh_token", "client_credentials", DEVICE_GRANT, "urn:ietf:params:oauth:grant-type:token-exchange"]);
const CLIENT_AUTH_PATHS = new Set(["/oidc/token", "/oidc/token/introspection", "/oidc/token/revocation"]);
/** oidc-provider's own body limit (lib/shared/selective_body.js). */
const MAX_BODY = 56 * 1024;

/**
 * The form body, read once: the provider then takes it from `req.body` (its documented fallback for
 * an already-parsed body, which the WLCG token middleware, lib/oidc/wlcgTokens.ts, uses too). When
 * that middleware has read it already, its result is used.
 */
async function readForm(req: IncomingMessage & { body?: unknown }): Promise<URLSearchParams | null> {
  if (!String(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) return null;
  if (typeof req.body === "string" || Buffer.isBuffer(req.body)) return new URLSearchParams(req.body.toString());
  if (!req.readable) return null;
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > MAX_BODY) return null; // the provider refuses it itself
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) break;
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks).toString("utf8");
  // Too large: an empty form, which the provider refuses as such.
  req.body = size > MAX_BODY ? "" : body;
  return size > MAX_BODY ? null : new URLSearchParams(body);
}

/** RFC 6749 §2.3.1: client_id from HTTP Basic (form-urlencoded inside), else from the body. */
function clientIdOf(authorization: string | undefined, form: URLSearchParams | null): string | null {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization ?? "");
  if (m) {
    const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0) {
      try {
        return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " "));
      } catch {
        return decoded.slice(0, colon);
      }
    }
  }
  return form?.get("client_id") || null;
}

function refuseJson(ctx: KoaContextWithOIDC, d: LimitDecision, error: "too_many_requests" | "slow_down" = "too_many_requests", status = 429) {
  const r = limitedResult(d, error, status);
  ctx.status = r.status;
  for (const [k, v] of Object.entries(r.headers)) ctx.set(k, v);
  ctx.body = r.body;
}

export function installOidcLimits(provider: Provider, limiter: RateLimiter, opts: { devicePollIntervalSeconds: number }): void {
  provider.use(async (ctx, next) => {
    const c = ctx as unknown as KoaContextWithOIDC;
    const ip = c.get("x-certbridge-client-ip") || c.ip;
    const post = c.method === "POST";

    if (c.path === "/oidc/auth") {
      const d = await limiter.hit("authorize.ip", ip);
      if (!d.allowed) return refuseJson(c, d);
      return next();
    }

    if (c.path === "/oidc/device" && post) {
      const d = await limiter.firstRefusal([() => limiter.blocked("user_code.ip_fail", ip), () => limiter.blocked("user_code.fail", "*")]);
      if (d) {
        c.status = 429;
        c.set("retry-after", String(d.retryAfterSeconds));
        c.set("cache-control", "no-store");
        c.type = "html";
        c.body = errorPage("too_many_requests", `Too many wrong codes were entered. Try again in ${Math.ceil(d.retryAfterSeconds / 60)} minute(s).`, "Too many attempts");
        return;
      }
      await next();
      if ((c.state as Record<string, unknown>)[WRONG_USER_CODE]) {
        await limiter.fail("user_code.ip_fail", ip);
        await limiter.fail("user_code.fail", "*");
      }
      return;
    }

    if (c.path === "/oidc/device/auth" && post) {
      const form = await readForm(c.req);
      const clientId = clientIdOf(c.get("authorization"), form);
      const d = await limiter.firstRefusal([() => limiter.hit("device_auth.ip", ip), ...(clientId ? [() => limiter.hit("device_auth.client", clientId)] : [])]);
      if (d) return refuseJson(c, d);
      await next();
      // RFC 8628 §3.2: the minimum polling interval (the client's default would be 5 s anyway).
      const body = c.body as Record<string, unknown> | undefined;
      if (c.status === 200 && body && typeof body === "object" && typeof body.device_code === "string") body.interval = opts.devicePollIntervalSeconds;
      return;
    }

    // Client authentication happens at the token, introspection and revocation endpoints alike (RFC 6749 §2.3, RFC 7662, RFC 7009).
    if (CLIENT_AUTH_PATHS.has(c.path) && post) {
      const form = await readForm(c.req);
      const clientId = clientIdOf(c.get("authorization"), form);
      const grantType = form?.get("grant_type") ?? "";
      const refused = await limiter.firstRefusal([
        () => limiter.blocked("token.ip_fail", ip),
        ...(clientId ? [() => limiter.blocked("token.client_fail", clientId)] : []),
        () => limiter.hit("token.ip", ip),
        ...(clientId ? [() => limiter.hit("token.client", clientId)] : []),
      ]);
      if (refused) return refuseJson(c, refused);
      const deviceCode = grantType === DEVICE_GRANT ? form?.get("device_code") : null;
      if (deviceCode) {
        // RFC 8628 §3.5: polling faster than `interval` is answered slow_down (400, RFC 6749 §5.2), and not looked up.
        const key = crypto.createHash("sha256").update(deviceCode).digest("base64url");
        const pace = await limiter.hit("device_poll", key);
        if (!pace.allowed) return refuseJson(c, pace, "slow_down", 400);
      }
      await next();
      const grantLabel = GRANT_LABELS.has(grantType) ? grantType : "other";
      const knownClient = c.oidc?.client?.clientId ?? "unknown";
      if (c.status === 401) {
        await limiter.fail("token.ip_fail", ip);
        if (clientId) await limiter.fail("token.client_fail", clientId);
        metrics.refusals.inc({ channel: "token", reason: "invalid_client" });
      }
      if (c.path === "/oidc/token") metrics.tokenGrants.inc({ grant_type: grantLabel, client: knownClient, outcome: c.status === 200 ? "issued" : "refused" });
      return;
    }
    return next();
  });
}
