/**
 * Proxy lifetime policy, pure so it can be table-tested. A request above a cap
 * is clamped (and reported as such), not refused: the MasterPortal's 400 for
 * an over-long proxylifetime broke gateways that ask for "as long as allowed".
 */
import { CertbridgeError, invalidRequest } from "../errors";
import { MIN_PROXY_SECONDS } from "../limits";

export interface LifetimeInput {
  requestedSeconds?: number;
  defaultSeconds: number;
  maxSeconds: number;
  clientMaxSeconds?: number;
}

export interface LifetimeDecision {
  seconds: number;
  clamped: boolean;
  /** Which cap applied, when clamped. */
  cappedBy?: "global" | "client";
}

export { MIN_PROXY_SECONDS };

/**
 * The longest proxy a requester may get: the portal's maximum, lowered by the
 * client's own (a gateway registered with a shorter one). The one place this
 * is decided; /getproxy's info, the renewal info and the consent page show it.
 */
export function lifetimeCap(maxSeconds: number, clientMaxSeconds?: number): number {
  return Math.min(maxSeconds, clientMaxSeconds ?? Infinity);
}

export function decideLifetime(i: LifetimeInput): LifetimeDecision {
  const requested = i.requestedSeconds ?? i.defaultSeconds;
  if (!Number.isSafeInteger(requested) || requested < MIN_PROXY_SECONDS) {
    throw invalidRequest(`proxy lifetime must be a whole number of seconds, at least ${MIN_PROXY_SECONDS}`);
  }
  for (const cap of [i.maxSeconds, i.clientMaxSeconds ?? i.maxSeconds, i.defaultSeconds]) {
    // A cap below the minimum is an operator's mistake, not the caller's: say so.
    if (!Number.isSafeInteger(cap) || cap < MIN_PROXY_SECONDS) {
      throw new CertbridgeError("invalid_config", `proxy lifetime limits must be whole seconds of at least ${MIN_PROXY_SECONDS}`);
    }
  }
  const clientCap = i.clientMaxSeconds ?? Infinity;
  const cap = lifetimeCap(i.maxSeconds, i.clientMaxSeconds);
  if (requested <= cap) return { seconds: requested, clamped: false };
  return { seconds: cap, clamped: true, cappedBy: clientCap < i.maxSeconds ? "client" : "global" };
}
