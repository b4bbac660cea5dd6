/**
 * Proxy issuance from verified claims, as the operator channel does it
 * (`certbridge proxy issue --claims`, and the tests): the operator-claims
 * provisioner resolves the person, the authority (lib/authority/authority.ts)
 * runs the pipeline. Other channels have their own provisioners.
 */
import type { VerifiedClaims } from "../identity/subject";
import type { Certbridge } from "../certbridge";
import type { IssuedProxy, ProxyExtensionHook } from "../authority/types";

export type { IssuedProxy, ProxyExtensionHook } from "../authority/types";

export interface ProxyIssuanceRequest {
  /** Claims of a verified identity (an ID token or userinfo the caller has validated). */
  claims: VerifiedClaims;
  /** PKCS#10 CSR or SPKI (PEM, base64 DER or DER). Absent: the server makes the key. */
  publicKey?: string | Uint8Array;
  /** Requested lifetime in seconds; absent: the configured default. */
  lifetimeSeconds?: number;
  /** The gateway's id and its own cap, when issued through a client. */
  client?: { id: string; maxLifetimeSeconds?: number };
  extension?: ProxyExtensionHook;
  /** Who asked, for the audit trail ("cli:root", "client:<id>", "user:<id>"). */
  actor: string;
  ip?: string;
  /** More for the audit record. */
  auditDetails?: Record<string, unknown>;
}

export function issueProxy(cb: Pick<Certbridge, "channels">, req: ProxyIssuanceRequest): Promise<IssuedProxy> {
  return cb.channels.operatorClaims.issueProxy(
    { claims: req.claims, actor: req.actor, ip: req.ip, client: req.client, auditDetails: req.auditDetails },
    { publicKey: req.publicKey, lifetimeSeconds: req.lifetimeSeconds, extension: req.extension },
  );
}
