/**
 * The authority's vocabulary (cf. smallstep: a provisioner authorizes a
 * request and hands the authority who is asking; the authority signs).
 */
import type { VerifiedClaims } from "../identity/subject";
import type { Identity } from "../issuance/identity";

/** What issuance needs of a person: their id and their fixed subject DN. */
export type RequesterIdentity = Pick<Identity, "id" | "subject">;
import type { KeySource } from "../db";
import type { Extension, CertificateParts } from "../pki/x509";
import type { LifetimeDecision } from "../issuance/policy";
import type { VomsRequest } from "../voms/proxyExtension";

/** A hook that adds extensions to a proxy (VOMS ACs) and may refuse the request. */
export interface ProxyExtensionHook {
  /** Policy step: may refuse (throw a CertbridgeError) before anything is signed. */
  authorize?(ctx: { identity: RequesterIdentity; claims: VerifiedClaims }): void;
  /** Recorded with the certificate, e.g. the VO. */
  describe(): { vo?: string; fqans?: string[] };
  /** After extensions(): what the person should know, e.g. an AC that ends before the proxy (voms-proxy-init warns too). */
  warnings?(): string[];
  extensions(ctx: { identity: RequesterIdentity; claims: VerifiedClaims; issuer: CertificateParts; serial: number; notBefore: Date; notAfter: Date }): Promise<Extension[]>;
}

/** Who is asking, as a provisioner resolved and authorized them. */
export interface Requester {
  /** The person (resolved by id, or from claims by the operator channel only). */
  identity: RequesterIdentity;
  /** Their last verified claims: VOMS membership is read from them. */
  claims: VerifiedClaims;
  /** For the audit trail: "client:<id>", "user:<id>", "cli:<user>". */
  actor: string;
  /** The provisioner's name: how they asked. */
  channel: string;
  ip?: string | null;
  /** The gateway asked through, with its own lifetime cap. */
  client?: { id: string; maxLifetimeSeconds?: number };
  /** VOs this requester may ask attributes of (null: any served VO). */
  allowedVos: readonly string[] | null;
  /** No proxy for this requester may end later (e.g. a MyProxy renewal consent's end). */
  notAfterCap?: Date;
  /** More for the audit record, e.g. the SSH key's fingerprint. */
  auditDetails?: Record<string, unknown>;
  /**
   * The person's newest valid user certificate as read a moment ago with their bearer token (null:
   * none); undefined when not read, and the issuance asks the database (lib/authority/userCredentials.ts).
   */
  userCertificateSeen?: { id: string; notAfter: Date } | null;
}

/** What is asked for. */
export interface ProxyOrder {
  /** PKCS#10 CSR or SPKI (PEM, base64 DER or DER). Absent: the server makes the key. */
  publicKey?: string | Uint8Array;
  /** Requested lifetime in seconds; absent: the configured default. */
  lifetimeSeconds?: number;
  /** VOMS attributes (voms-proxy-init --voms), checked against the requester's allowed VOs and claims. */
  voms?: readonly VomsRequest[];
  /** Any other extension hook (tests use forged ones). */
  extension?: ProxyExtensionHook;
}

export interface IssuedProxy {
  certificateId: string;
  /** The X509_USER_PROXY file: proxy cert, proxy key (server keys only), user cert. */
  pem: string;
  subject: string;
  serial: number;
  notBefore: Date;
  notAfter: Date;
  lifetime: LifetimeDecision;
  keySource: KeySource;
  keyBits: number;
  /** The extension hook that ran, if any (describe() names the VOMS attributes). */
  extension?: ProxyExtensionHook;
  /** Said to the person on every channel that can (HTTP header, SSH stderr, CLI line): e.g. an AC ending before the proxy. */
  warnings: string[];
}

/**
 * One way of asking for a proxy. `authorize` checks the input (a token, a
 * session, an SSH key, an operator's claims file) and returns the Requester,
 * or throws a CertbridgeError. Refusals here are the provisioner's to audit.
 */
export interface Provisioner<Input, R extends Requester = Requester> {
  readonly name: string;
  authorize(input: Input): Promise<R>;
}

/**
 * The person part of a Requester, from their stored record (findIdentityClaims): resolved by id,
 * with their fixed DN and their last verified claims. Every channel that starts from an id uses it.
 */
export function personOf(row: { id: string; subject: string; claims: string }): Pick<Requester, "identity" | "claims"> {
  return { identity: { id: row.id, subject: row.subject }, claims: JSON.parse(row.claims) as VerifiedClaims };
}
