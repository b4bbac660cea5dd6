/**
 * A renewer's certificate chain (MyProxy renewal, `myproxy-logon -a`): the VO box's host
 * certificate, or a proxy of it (RFC 3820), checked by our own code (Node's OpenSSL cannot accept
 * proxies). The proxy part is walkProxies' (clientChain.ts); the end-entity certificate must be
 * the registered renewer's, issued by one of the CA certificates the administrator registered for
 * it (current, a CA), and not listed on that CA's CRL when one was registered (RFC 5280 §6.3: a CRL
 * past its nextUpdate no longer says anything, so it refuses, as Globus does).
 */
import crypto from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { accessDenied, invalidRequest } from "../errors";
import { pemBlocks } from "../pki/der";
import { pkijsNameToSlash } from "../pki/dn";
import { decodeCertificate } from "../inspect/certificate";
import { walkProxies, type ChainCertificate } from "./clientChain";

export const refuseRenewer = (why: string) => accessDenied(`the renewer's certificate chain is not acceptable: ${why}`);

export interface RenewerChain {
  /** The end-entity (host) certificate's subject: the renewer's name. */
  subject: string;
  certs: ChainCertificate[];
  eec: number;
  /** The earliest end of the chain. */
  notAfter: Date;
}

/** Whose host certificate the chain claims to end in, before anything is checked (for the audit record of a refusal). */
export function claimedRenewer(ders: readonly Uint8Array[]): string | null {
  for (const d of ders.slice(0, 10)) {
    try {
      const c = decodeCertificate(d);
      if (!c.proxy) return c.subject;
    } catch {
      return null;
    }
  }
  return null;
}

/** The proxy steps of the chain; says whose host certificate it ends in. */
export function readRenewerChain(ders: readonly Uint8Array[], now: Date): RenewerChain {
  if (ders.length === 0) throw refuseRenewer("no certificate was sent");
  const { certs, eec, notAfter } = walkProxies(ders, now, refuseRenewer);
  return { subject: certs[eec]!.decoded.subject, certs, eec, notAfter };
}

interface VouchingCa {
  subject: string;
  x509: crypto.X509Certificate;
  notBefore: Date;
  notAfter: Date;
}

/** The registered CA certificates (PEM); an operator-supplied file that holds no certificate is refused at registration. */
export function parseCaBundle(pem: string): VouchingCa[] {
  return pemBlocks(pem)
    .filter((b) => b.label === "CERTIFICATE")
    .map((b) => {
      const decoded = decodeCertificate(b.der);
      return { subject: decoded.subject, x509: new crypto.X509Certificate(Buffer.from(b.der)), notBefore: decoded.notBefore, notAfter: decoded.notAfter };
    });
}

interface ParsedCrl {
  issuer: string;
  crl: pkijs.CertificateRevocationList;
  nextUpdate: Date | null;
  revokedSerials: Set<string>;
}

export function parseCrls(pem: string): ParsedCrl[] {
  return pemBlocks(pem)
    .filter((b) => b.label === "X509 CRL")
    .map((b) => {
      const asn = asn1js.fromBER(b.der);
      if (asn.offset === -1) throw invalidRequest("a CRL is not valid DER");
      const crl = new pkijs.CertificateRevocationList({ schema: asn.result });
      const hex = (v: Uint8Array) => Buffer.from(v).toString("hex").replace(/^(00)+(?=.)/, "");
      return {
        issuer: pkijsNameToSlash(crl.issuer),
        crl,
        nextUpdate: crl.nextUpdate ? crl.nextUpdate.value : null,
        revokedSerials: new Set((crl.revokedCertificates ?? []).map((r) => hex(r.userCertificate.valueBlock.valueHexView))),
      };
    });
}

/** Is the chain's host certificate vouched for by the renewer's registered CAs, and not revoked? Throws a MyProxy-worded refusal. */
export async function checkVouched(chain: RenewerChain, registered: { caPem: string; crlPem: string }, now: Date): Promise<void> {
  const host = chain.certs[chain.eec]!;
  const candidates = parseCaBundle(registered.caPem).filter((ca) => ca.subject === host.decoded.issuer);
  const issuer = candidates.find((ca) => host.x509.verify(ca.x509.publicKey));
  if (!issuer) throw refuseRenewer(`${host.decoded.subject} is not issued by a CA registered for this renewer (its issuer is ${host.decoded.issuer})`);
  if (!issuer.x509.ca) throw refuseRenewer(`the certificate of ${issuer.subject} is not a CA certificate`);
  if (issuer.notBefore > now || issuer.notAfter < now) throw refuseRenewer(`the CA certificate of ${issuer.subject} is not valid now`);
  const issuerPkijs = new pkijs.Certificate({ schema: asn1js.fromBER(new Uint8Array(issuer.x509.raw)).result });
  for (const crl of parseCrls(registered.crlPem).filter((c) => c.issuer === issuer.subject)) {
    if (!(await crl.crl.verify({ issuerCertificate: issuerPkijs }).catch(() => false))) continue; // another key's CRL says nothing about this one
    if (crl.nextUpdate && crl.nextUpdate < now) throw refuseRenewer(`the registered CRL of ${issuer.subject} expired at ${crl.nextUpdate.toISOString()}: ask the portal's administrator to refresh it`);
    if (crl.revokedSerials.has(host.decoded.serialHex)) throw refuseRenewer(`${host.decoded.subject} (serial ${host.decoded.serialHex}) is revoked by ${issuer.subject}`);
  }
}

/** The MyProxy X.509 challenge (MyProxy's AUTHORIZETYPE_CERT256): the chain's first key signed the challenge text with SHA-256. */
export function verifyChallengeSignature(chain: RenewerChain, challenge: string, signature: Uint8Array): boolean {
  try {
    return crypto.verify("sha256", Buffer.from(challenge, "latin1"), chain.certs[0]!.x509.publicKey, signature);
  } catch {
    return false;
  }
}
