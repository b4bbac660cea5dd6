/**
 * The portal's HTTP API as certbridge-proxy-init uses it: the device
 * authorization grant (RFC 8628), the refresh grant (RFC 6749 §6), /getproxy
 * in CSR mode, and /api/renewal-info. Every answer is validated with zod.
 *
 * Failures come in two kinds, because the renewer treats them differently:
 * - PortalUnavailable: the portal could not answer (connection refused or
 *   reset, timeout, 5xx, 429). Retry later, keep the current proxy.
 * - PortalRefusal: the portal answered no (an OAuth error such as
 *   invalid_grant). Retrying the same request cannot help.
 */
import { z } from "zod";
import { DEVICE_CODE_GRANT } from "../../../lib/oidc/cliClient";

const REQUEST_TIMEOUT_MS = 30_000;

export class PortalUnavailable extends Error {}

export class PortalRefusal extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
    readonly status: number,
  ) {
    super(description ? `${error}: ${description}` : error);
  }
}

const oauthError = z.object({ error: z.string(), error_description: z.string().optional() });

async function post(url: string, form: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Headers }> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      // shown on the portal's confirmation page, next to the request's address
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json", "user-agent": `certbridge-proxy-init (Node.js ${process.version})`, ...headers },
      body,
      redirect: "error",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new PortalUnavailable(`${new URL(url).origin} is unreachable (${cause?.code ?? cause?.message ?? (e as Error).message})`);
  }
  const text = await res.text().catch(() => "");
  if (res.status >= 500 || res.status === 429) {
    const parsed = oauthError.safeParse(safeJson(text));
    throw new PortalUnavailable(`${new URL(url).pathname} answered ${res.status}${parsed.success ? ` ${parsed.data.error}: ${parsed.data.error_description ?? ""}` : ""}`.trimEnd());
  }
  return { status: res.status, body: text, headers: res.headers };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseJson<T>(schema: z.ZodType<T>, r: { status: number; body: string }, what: string): T {
  const json = safeJson(r.body);
  if (r.status >= 400) {
    const e = oauthError.safeParse(json);
    if (e.success) throw new PortalRefusal(e.data.error, e.data.error_description ?? "", r.status);
    throw new PortalRefusal("invalid_response", `${what} answered HTTP ${r.status}`, r.status);
  }
  const ok = schema.safeParse(json);
  if (!ok.success) throw new PortalRefusal("invalid_response", `${what} sent an unexpected answer (${ok.error.issues[0]?.message ?? "not JSON"})`, r.status);
  return ok.data;
}

/** RFC 8628 §3.2 */
const deviceAuthorization = z.object({
  device_code: z.string().min(1),
  user_code: z.string().min(1),
  verification_uri: z.url(),
  verification_uri_complete: z.url().optional(),
  expires_in: z.number().int().positive(),
  interval: z.number().int().positive().optional(),
});
export type DeviceAuthorization = z.infer<typeof deviceAuthorization>;

/** RFC 6749 §5.1 */
const tokenResponse = z.object({
  access_token: z.string().min(1),
  token_type: z.string().regex(/^bearer$/i, "token_type must be Bearer"),
  expires_in: z.number().int().positive().optional(),
  refresh_token: z.string().min(1).optional(),
  scope: z.string().optional(),
});
export type TokenResponse = z.infer<typeof tokenResponse>;

export const renewalInfoSchema = z.object({
  renewable_until: z.iso.datetime(),
  refresh_token_expires_at: z.iso.datetime(),
  consent_expires_at: z.iso.datetime().nullable(),
  max_proxy_lifetime: z.number().int().nonnegative(),
  subject: z.string(),
  client_id: z.string(),
  scopes: z.array(z.string()),
});
export type RenewalInfo = z.infer<typeof renewalInfoSchema>;

export class PortalClient {
  constructor(
    readonly portal: string,
    readonly clientId: string,
  ) {}

  async startDeviceLogin(scope: string): Promise<DeviceAuthorization> {
    const r = await post(`${this.portal}/oidc/device/auth`, { client_id: this.clientId, scope });
    return parseJson(deviceAuthorization, r, "the device authorization endpoint");
  }

  /**
   * Poll the token endpoint until the person approves or denies (RFC 8628
   * §3.4-3.5): wait `interval` seconds (5 when the portal names none) between
   * polls, 5 more after each slow_down. The portal being briefly unavailable
   * does not end the login; the code's expiry does.
   */
  async waitForDeviceApproval(auth: DeviceAuthorization, sleep: (ms: number) => Promise<void>, now: () => number = Date.now): Promise<TokenResponse> {
    let interval = auth.interval ?? 5;
    const deadline = now() + auth.expires_in * 1000;
    for (;;) {
      await sleep(interval * 1000);
      if (now() > deadline) throw new PortalRefusal("expired_token", "the login code expired before it was approved in the browser", 400);
      let r;
      try {
        r = await post(`${this.portal}/oidc/token`, { grant_type: DEVICE_CODE_GRANT, device_code: auth.device_code, client_id: this.clientId });
      } catch (e) {
        if (e instanceof PortalUnavailable) continue;
        throw e;
      }
      try {
        return parseJson(tokenResponse, r, "the token endpoint");
      } catch (e) {
        if (!(e instanceof PortalRefusal)) throw e;
        if (e.error === "authorization_pending") continue;
        if (e.error === "slow_down") {
          interval += 5;
          continue;
        }
        throw e;
      }
    }
  }

  /** RFC 6749 §6; the portal rotates the refresh token on every use. */
  async refresh(refreshToken: string): Promise<TokenResponse> {
    const r = await post(`${this.portal}/oidc/token`, { grant_type: "refresh_token", refresh_token: refreshToken, client_id: this.clientId });
    return parseJson(tokenResponse, r, "the token endpoint");
  }

  /** /getproxy in CSR mode: the proxy certificate and its chain, for our own key. */
  async getProxy(accessToken: string, csrPem: string, opts: { lifetimeSeconds?: number; voms: string[] }): Promise<{ pem: string; serial: string | null; clamped: boolean }> {
    const form: Record<string, string | string[]> = { certreq: csrPem };
    if (opts.lifetimeSeconds !== undefined) form.proxylifetime = String(opts.lifetimeSeconds);
    if (opts.voms.length) form.voname = opts.voms;
    const r = await post(`${this.portal}/getproxy`, form, { authorization: `Bearer ${accessToken}`, accept: "application/x-pem-file, application/json" });
    if (r.status !== 200) parseJson(z.never(), r, "/getproxy");
    if (!r.body.includes("-----BEGIN CERTIFICATE-----")) throw new PortalRefusal("invalid_response", "/getproxy did not return certificates", r.status);
    return { pem: r.body, serial: r.headers.get("x-proxy-serial"), clamped: r.headers.get("x-proxy-lifetime-clamped") === "true" };
  }

  async renewalInfo(refreshToken: string): Promise<RenewalInfo> {
    const r = await post(`${this.portal}/api/renewal-info`, { refresh_token: refreshToken, client_id: this.clientId });
    return parseJson(renewalInfoSchema, r, "/api/renewal-info");
  }
}
