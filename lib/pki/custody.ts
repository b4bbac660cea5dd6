/**
 * Key custody: everything that signs does so through this interface, so a
 * PKCS#11/HSM implementation can replace software keys without touching the
 * issuance code (cf. smallstep kms/apiv1). Keys are opened by URI through
 * lib/kms. Each signer reports the AlgorithmIdentifier of its signatures,
 * which the certificate, CRL and AC encoders copy into what they sign;
 * software keys sign sha256WithRSAEncryption (RFC 4055 §5): SHA-1 proxies
 * are refused by EL9.
 */
import crypto, { type KeyObject } from "node:crypto";
import * as der from "./der";
import { encryptPkcs8 } from "./pkcs8";

export const SHA256_WITH_RSA = "1.2.840.113549.1.1.11";

/** AlgorithmIdentifier DER for sha256WithRSAEncryption (parameters NULL, RFC 4055 §5). */
export const SHA256_WITH_RSA_ALGORITHM: Uint8Array = der.sequence(der.oid(SHA256_WITH_RSA), der.nullValue());

export interface KeyCustody {
  /** DER SubjectPublicKeyInfo of the signing key. */
  readonly publicKeySpki: Uint8Array;
  /** RSA modulus length in bits. */
  readonly bits: number;
  /** DER AlgorithmIdentifier of the signatures `sign` makes (signature fields of TBS and outer structure). */
  readonly signatureAlgorithm: Uint8Array;
  /** A signature over `data`, with `signatureAlgorithm`. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/**
 * Where a software key's RSA signatures are computed. "thread-pool": in libuv's pool, so one
 * process's concurrent issuances use every core. "event-loop": synchronously, for processes that
 * each have a core of their own (as many workers as cores): the pool would add a hand-off between
 * threads per signature and no parallelism (lib/config.ts decides, bench/throughput.ts shows it).
 */
export type SigningThread = "thread-pool" | "event-loop";

/** A private key held in process memory. */
export class SoftwareKey implements KeyCustody {
  readonly publicKeySpki: Uint8Array;
  readonly bits: number;
  readonly signatureAlgorithm = SHA256_WITH_RSA_ALGORITHM;

  constructor(
    private readonly key: KeyObject,
    private readonly signOn: SigningThread = "thread-pool",
  ) {
    if (key.type !== "private" || key.asymmetricKeyType !== "rsa") throw new Error("SoftwareKey needs an RSA private key");
    this.publicKeySpki = new Uint8Array(crypto.createPublicKey(key).export({ type: "spki", format: "der" }));
    this.bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  }

  sign(data: Uint8Array): Promise<Uint8Array> {
    if (this.signOn === "event-loop") return Promise.resolve(new Uint8Array(crypto.sign("sha256", data, this.key)));
    return new Promise((resolve, reject) =>
      crypto.sign("sha256", data, this.key, (err, sig) => (err ? reject(err) : resolve(new Uint8Array(sig)))),
    );
  }

  /** Unencrypted PKCS#8 DER, for sealing or for the proxy file. */
  exportPkcs8(): Uint8Array {
    return new Uint8Array(this.key.export({ type: "pkcs8", format: "der" }));
  }

  /** PKCS#8 PEM encrypted with PBES2 (PBKDF2-HMAC-SHA256, 600,000 iterations) and AES-256-CBC: lib/pki/pkcs8.ts. */
  exportEncryptedPem(passphrase: string): Promise<string> {
    return encryptPkcs8(this.exportPkcs8(), passphrase);
  }

  static async generate(bits: number, signOn?: SigningThread): Promise<SoftwareKey> {
    const { privateKey } = await new Promise<{ privateKey: KeyObject }>((resolve, reject) =>
      crypto.generateKeyPair("rsa", { modulusLength: bits, publicExponent: 0x10001 }, (err, _pub, privateKey) =>
        err ? reject(err) : resolve({ privateKey }),
      ),
    );
    return new SoftwareKey(privateKey, signOn);
  }

  static fromPkcs8(der: Uint8Array, signOn?: SigningThread): SoftwareKey {
    return new SoftwareKey(crypto.createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" }), signOn);
  }

  /** PEM in PKCS#8 (plain or encrypted) or PKCS#1 form. */
  static fromPem(pem: string, passphrase?: string): SoftwareKey {
    return new SoftwareKey(crypto.createPrivateKey({ key: pem, format: "pem", passphrase: passphrase || undefined }));
  }
}
