/**
 * How oidc-provider's artefacts are kept at rest (issue 12). Their ids are the bearer secrets
 * themselves — the access token, the refresh token, the authorization and device codes, the
 * session cookie, the interaction cookie — so a row id in clear lets anyone who can read the
 * database (a backup, a replica, a dump) act as the person. Here:
 *
 * - the row id is a keyed hash, "h1." + base64url(HMAC-SHA-256(index key, id)): a lookup hashes
 *   the presented value and finds the row; the value itself is never stored. The device flow's
 *   user code, looked up too, is hashed the same way.
 * - the payload is sealed (AES-256-GCM, lib/pki/seal.ts) with the row's model and hashed id as
 *   associated data: it holds other secrets (an interaction holds the session cookie, a session
 *   its logout secret, a device code its user code) and must not be moved to another row.
 *
 * Both keys are derived from the configured key-encryption key (CERTBRIDGE_KEK) with HKDF
 * (RFC 5869), each under its own label, so neither is the KEK itself. Grants are left as they are:
 * a grant id authorises nothing on its own (tokens point at grants, the account page lists them).
 */
import crypto from "node:crypto";
import { openSealedKey, sealKey } from "../pki/seal";

/** oidc-provider models whose id is a bearer secret (or a cookie value). Grant and Client are not. */
export const SECRET_ID_MODELS: ReadonlySet<string> = new Set([
  "AccessToken",
  "AuthorizationCode",
  "RefreshToken",
  "DeviceCode",
  "ClientCredentials",
  "Session",
  "Interaction",
  "PushedAuthorizationRequest",
  "BackchannelAuthenticationRequest",
  "RegistrationAccessToken",
  "InitialAccessToken",
  "ReplayDetection",
  "PreAuthorizedCode",
]);

export const HASHED_ID_PREFIX = "h1.";
const SEALED_PAYLOAD = /^v1\./;

export class TokenVault {
  private readonly indexKey: Buffer;
  private readonly payloadKey: Buffer;

  constructor(kek: Buffer) {
    const derive = (label: string) => Buffer.from(crypto.hkdfSync("sha256", kek, Buffer.alloc(0), label, 32));
    this.indexKey = derive("certbridge oidc-provider artefact index v1");
    this.payloadKey = derive("certbridge oidc-provider artefact payload v1");
  }

  /** Whether rows of `model` (without a namespace prefix) are hashed and sealed. */
  static protects(baseModel: string): boolean {
    return SECRET_ID_MODELS.has(baseModel);
  }

  /** The stored form of a bearer value: what the database holds and is searched by. */
  index(value: string): string {
    return HASHED_ID_PREFIX + crypto.createHmac("sha256", this.indexKey).update(value, "utf8").digest("base64url");
  }

  seal(model: string, storedId: string, payload: string): string {
    return sealKey(this.payloadKey, Buffer.from(payload, "utf8"), `${model}:${storedId}`);
  }

  /** A stored payload in clear JSON (grants; rows written before issue 12) is returned as it is. */
  open(model: string, storedId: string, stored: string): string {
    if (!SEALED_PAYLOAD.test(stored)) return stored;
    return Buffer.from(openSealedKey(this.payloadKey, stored, `${model}:${storedId}`)).toString("utf8");
  }
}
