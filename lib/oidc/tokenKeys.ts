/**
 * Signing keys of WLCG access tokens, rotated with overlap (WLCG profile: keys live about six
 * months; relying parties refresh the JWKS every 6 hours and keep it up to 2 days). Time is cut
 * into periods of CERTBRIDGE_TOKEN_KEY_ROTATION; period n's key signs during period n, is
 * published during period n-1 (so every relying party has it before the first token it signs)
 * and stays published during period n+1 (so tokens it signed verify until they expire). Keys are
 * stored sealed under the KEK like the ID token key (signingKeys.ts), one per period, made by
 * whichever instance needs it first. The ID token key is not rotated here.
 */
import crypto from "node:crypto";
import type { Db } from "../db";
import { signingJwk } from "./signingKeys";

export const tokenKeyName = (period: number) => `wlcg-${period}`;

/** The period a moment falls in. */
export const tokenKeyPeriod = (nowSeconds: number, rotationSeconds: number) => Math.floor(nowSeconds / rotationSeconds);

export interface TokenKeys {
  /** Published: previous, current and next period's keys (private JWKs for oidc-provider's keystore). */
  jwks: crypto.JsonWebKey[];
  /** The kid that signs now (the newest loaded key once its period is reached). */
  signingKid: (nowSeconds: number) => string;
  /** Public keys that verify this portal's JWTs (token exchange). */
  verificationKeys: crypto.KeyObject[];
}

export async function loadTokenKeys(db: Db, kek: Buffer, rotationSeconds: number, nowSeconds: number): Promise<TokenKeys> {
  const n = tokenKeyPeriod(nowSeconds, rotationSeconds);
  const periods = [n - 1, n, n + 1];
  const keys = new Map<number, crypto.JsonWebKey & { kid: string }>();
  for (const p of periods) keys.set(p, (await signingJwk(db, kek, tokenKeyName(p))) as crypto.JsonWebKey & { kid: string });
  return {
    // current first: the order oidc-provider meets them in when nothing names a kid
    jwks: [keys.get(n)!, keys.get(n + 1)!, keys.get(n - 1)!],
    signingKid: (now) => keys.get(Math.min(n + 1, Math.max(n, tokenKeyPeriod(now, rotationSeconds))))!.kid,
    verificationKeys: periods.map((p) => crypto.createPublicKey({ key: keys.get(p)!, format: "jwk" })),
  };
}
