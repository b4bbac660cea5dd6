/**
 * certbridge-proxy-init --renew: keep a proxy fresh for a service (a VO box,
 * DIRAC's ProxyManager) from a refresh token, without a browser.
 *
 * The loop: when the proxy file is missing, or less than `renewFraction` of
 * its lifetime is left, trade the refresh token for a new one plus an access
 * token (RFC 6749 §6), store the new refresh token, then get a proxy for a
 * fresh local key. While the portal is unreachable it backs off
 * exponentially with jitter and leaves the current proxy in place. When the
 * portal refuses the refresh token (invalid_grant: consent revoked or
 * expired), retrying cannot help: it stops with a clear message.
 *
 * Refresh-token rotation and crashes. The portal replaces the refresh token on
 * every use and treats a reused old one as stolen (it revokes the grant). So
 * the new token is written to the file (atomically, fsynced) as soon as it
 * arrives, before the access token is used for anything:
 * - a crash before the refresh request leaves the old token, still valid;
 * - a crash after the file is written leaves the new token, valid;
 * - the one unavoidable window is between the portal committing the
 *   rotation and the rename reaching the disk (one HTTP answer and a write).
 *   A token lost there cannot be recovered by any client: log in again.
 * A lock file keeps two renewers from spending the same token.
 */
import { PROXY_BACKDATE_SECONDS } from "../../../lib/pki/proxy";
import { formatDuration } from "../../../lib/duration";
import type { ProxyFileInfo } from "../../../lib/inspect/proxyFile";
import { acquireLock, CredentialError, obtainProxy, shortAcWarnings, readProxyFile, readRefreshTokenFile, writeRefreshTokenFile } from "./credentials";
import { PortalClient, PortalRefusal, PortalUnavailable, type RenewalInfo } from "./portalClient";

export interface RenewerOptions {
  refreshTokenFile: string;
  out: string;
  portal: string | undefined;
  clientId: string;
  voms: string[];
  lifetimeSeconds: number | undefined;
  renewFraction: number;
  warnBeforeSeconds: number;
  webhook: string | undefined;
  maxBackoffSeconds: number;
  once: boolean;
}

export interface RenewerDeps {
  now: () => number;
  /** Resolves early (without error) when `signal` aborts. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  log: (line: string) => void;
  random: () => number;
  hostname: string;
}

export const EXIT_RENEWAL_ENDING = 3;

/** Recheck the proxy file at least this often, so a deleted file is replaced soon. */
const MAX_SLEEP_MS = 60_000;
/** Ask /api/renewal-info again after this long, even without a renewal. */
const INFO_EVERY_MS = 6 * 3600_000;
const BACKOFF_BASE_MS = 1_000;
/** Use a cached access token only with this much life left. */
const ACCESS_TOKEN_MARGIN_MS = 60_000;

/** When a proxy is due: missing, unusable, or less than `fraction` of its lifetime left. */
export function renewalDueAt(info: ProxyFileInfo | null, fraction: number): number {
  if (!info || !info.keyMatches) return -Infinity;
  // Certbridge back-dates notBefore by 5 minutes (lib/pki/proxy.ts); the granted lifetime starts after that.
  const lifetime = Math.max(1_000, info.notAfter.getTime() - info.notBefore.getTime() - PROXY_BACKDATE_SECONDS * 1000);
  return info.notAfter.getTime() - fraction * lifetime;
}

/** Exponential backoff with "equal jitter": half the step fixed, half random, capped. */
export function backoffDelay(attempt: number, maxMs: number, random: () => number): number {
  const step = Math.min(maxMs, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + random() * (step / 2));
}

export async function runRenewer(opts: RenewerOptions, deps: RenewerDeps, signal?: AbortSignal): Promise<number> {
  const stored = readRefreshTokenFile(opts.refreshTokenFile);
  if (opts.portal && opts.portal !== stored.portal.replace(/\/+$/, "")) {
    throw new CredentialError(`${opts.refreshTokenFile} holds a token of ${stored.portal}, not of ${opts.portal}`);
  }
  const client = new PortalClient(stored.portal.replace(/\/+$/, ""), stored.client_id);
  const release = acquireLock(opts.refreshTokenFile);
  try {
    return await new Renewer(opts, deps, client).run(signal);
  } finally {
    release();
  }
}

class Renewer {
  private accessToken: { value: string; expiresAt: number } | null = null;
  private failures = 0;
  private lastInfoAt = -Infinity;
  private warnedFor: string | null = null;
  private endingSoon = false;

  constructor(
    private readonly opts: RenewerOptions,
    private readonly deps: RenewerDeps,
    private readonly client: PortalClient,
  ) {}

  private log(message: string) {
    this.deps.log(`${new Date(this.deps.now()).toISOString()} certbridge-proxy-init: ${message}`);
  }

  async run(signal?: AbortSignal): Promise<number> {
    this.log(`renewing ${this.opts.out} from ${this.client.portal} when less than ${Math.round(this.opts.renewFraction * 100)}% of its lifetime is left${this.opts.once ? " (once)" : ""}`);
    while (!signal?.aborted) {
      const current = readProxyFile(this.opts.out);
      const dueAt = renewalDueAt(current, this.opts.renewFraction);
      let wait: number;
      if (this.deps.now() >= dueAt) {
        const outcome = await this.renew(current);
        if (outcome === "stop") return 1;
        if (outcome === "retry") {
          if (this.opts.once) return 1;
          wait = backoffDelay(this.failures - 1, this.opts.maxBackoffSeconds * 1000, this.deps.random);
          this.log(`retrying in ${formatDuration(Math.max(1, Math.round(wait / 1000)))}; the current proxy stays in place${current ? ` (valid until ${current.notAfter.toISOString()})` : ""}`);
          await this.deps.sleep(wait, signal);
          continue;
        }
      } else {
        if (this.opts.once) this.log(`${this.opts.out} is valid until ${current!.notAfter.toISOString()}; not due before ${new Date(dueAt).toISOString()}`);
        if (this.deps.now() - this.lastInfoAt >= INFO_EVERY_MS) await this.checkRenewalEnd(readRefreshTokenFile(this.opts.refreshTokenFile).refresh_token);
      }
      if (this.opts.once) return this.endingSoon ? EXIT_RENEWAL_ENDING : 0;
      const next = renewalDueAt(readProxyFile(this.opts.out), this.opts.renewFraction);
      wait = Math.max(0, Math.min(MAX_SLEEP_MS, next - this.deps.now()));
      await this.deps.sleep(wait, signal);
    }
    this.log("stopped");
    return 0;
  }

  /** One renewal: "ok", "retry" (portal unavailable; backoff) or "stop" (refused; retrying cannot help). */
  private async renew(current: ProxyFileInfo | null): Promise<"ok" | "retry" | "stop"> {
    this.log(current ? `${this.opts.out} expires ${current.notAfter.toISOString()}: renewing` : `${this.opts.out} is missing or unusable: getting a proxy`);
    try {
      let fromCache = this.accessToken !== null && this.accessToken.expiresAt - this.deps.now() > ACCESS_TOKEN_MARGIN_MS;
      for (;;) {
        const accessToken = fromCache ? this.accessToken!.value : await this.refresh();
        try {
          const { info, clamped } = await obtainProxy(this.client, accessToken, { out: this.opts.out, lifetimeSeconds: this.opts.lifetimeSeconds, voms: this.opts.voms });
          this.failures = 0;
          const vo = info.voms.length ? `, VOs ${info.voms.map((v) => v.vo).join(",")}` : "";
          this.log(`renewed ${this.opts.out}: serial ${info.serial}, valid until ${info.notAfter.toISOString()}${clamped ? " (lifetime clamped by the portal)" : ""}${vo}`);
          for (const w of shortAcWarnings(info, this.deps.now())) this.log(w);
          return "ok";
        } catch (e) {
          // A cached access token may have been revoked meanwhile: refresh once before deciding.
          if (fromCache && e instanceof PortalRefusal && e.error === "invalid_token") {
            this.accessToken = null;
            fromCache = false;
            continue;
          }
          throw e;
        }
      }
    } catch (e) {
      if (e instanceof PortalUnavailable) {
        this.failures++;
        this.log(`portal unavailable (${e.message}), attempt ${this.failures}`);
        return "retry";
      }
      if (e instanceof PortalRefusal || e instanceof CredentialError) {
        const refused = e instanceof PortalRefusal && e.error === "invalid_grant";
        const message = refused
          ? `renewal stopped: the portal refused the refresh token (${e.message}). The consent was revoked or has expired; log in again with: certbridge-proxy-init --refresh-token-file ${this.opts.refreshTokenFile}`
          : `renewal stopped: ${e.message}`;
        this.log(message);
        await this.notify({ event: "certbridge.renewal_stopped", message });
        return "stop";
      }
      throw e;
    }
  }

  /** Trade the refresh token; store the rotated one BEFORE the access token is used. */
  private async refresh(): Promise<string> {
    const stored = readRefreshTokenFile(this.opts.refreshTokenFile);
    const tokens = await this.client.refresh(stored.refresh_token);
    const refreshToken = tokens.refresh_token ?? stored.refresh_token;
    if (tokens.refresh_token) writeRefreshTokenFile(this.opts.refreshTokenFile, { portal: stored.portal, client_id: stored.client_id, refresh_token: refreshToken });
    this.accessToken = { value: tokens.access_token, expiresAt: this.deps.now() + (tokens.expires_in ?? 0) * 1000 };
    await this.checkRenewalEnd(refreshToken);
    return tokens.access_token;
  }

  /** Warn --warn-before ahead of the end of renewal (refresh token or consent expiry). Never fatal. */
  private async checkRenewalEnd(refreshToken: string): Promise<void> {
    let info: RenewalInfo;
    try {
      info = await this.client.renewalInfo(refreshToken);
    } catch (e) {
      this.log(`could not ask until when renewal is possible: ${(e as Error).message}`);
      return;
    }
    this.lastInfoAt = this.deps.now();
    const left = Math.floor((Date.parse(info.renewable_until) - this.deps.now()) / 1000);
    this.endingSoon = left < this.opts.warnBeforeSeconds;
    if (!this.endingSoon || this.warnedFor === info.renewable_until) return;
    this.warnedFor = info.renewable_until;
    const cause = info.consent_expires_at === info.renewable_until ? "the consent expires" : "the refresh token expires unless used";
    const message = `WARNING: renewal for ${info.subject} is possible only until ${info.renewable_until} (${left > 0 ? `in ${formatDuration(left)}` : "now"}; ${cause}). Log in again before then: certbridge-proxy-init --refresh-token-file ${this.opts.refreshTokenFile}`;
    this.log(message);
    await this.notify({ event: "certbridge.renewal_ending", message, renewable_until: info.renewable_until, seconds_left: Math.max(0, left), subject: info.subject });
  }

  private async notify(payload: Record<string, unknown>): Promise<void> {
    if (!this.opts.webhook) return;
    try {
      const res = await fetch(this.opts.webhook, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...payload, host: this.deps.hostname, proxy_file: this.opts.out, refresh_token_file: this.opts.refreshTokenFile, at: new Date(this.deps.now()).toISOString() }),
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok) this.log(`webhook ${this.opts.webhook} answered ${res.status}`);
    } catch (e) {
      this.log(`webhook ${this.opts.webhook} failed: ${(e as Error).message}`);
    }
  }
}
