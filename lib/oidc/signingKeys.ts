/**
 * Key storage of the OpenID providers (the portal's and the development IdP's): the ID token
 * signing key (RS256), shared by every instance through the database, sealed under the KEK
 * (AES-256-GCM, lib/pki/seal.ts) and made on first start.
 */
import crypto from "node:crypto";
import { createSealedSigningKey, findSealedSigningKey, type Db } from "../db";
import { openSealedKey, sealKey } from "../pki/seal";

const SIGNING_KEY_MODEL = "CertbridgeSigningKey";

/**
 * The ID token signing key (RS256), shared by every instance through the
 * database and sealed under the KEK. Made on first start.
 */
export async function signingJwk(db: Db, kek: Buffer, name = "current"): Promise<crypto.JsonWebKey> {
  const context = `certbridge:oidc-signing-key:${name}`;
  const load = async () => {
    const sealed = await findSealedSigningKey(db, SIGNING_KEY_MODEL, name);
    return sealed ? (JSON.parse(Buffer.from(openSealedKey(kek, sealed, context)).toString("utf8")) as crypto.JsonWebKey) : undefined;
  };
  const existing = await load();
  if (existing) return existing;
  const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: crypto.randomBytes(8).toString("hex"), use: "sig", alg: "RS256" };
  try {
    await createSealedSigningKey(db, SIGNING_KEY_MODEL, name, sealKey(kek, Buffer.from(JSON.stringify(jwk)), context));
    return jwk;
  } catch {
    return (await load())!; // another instance won the race
  }
}
