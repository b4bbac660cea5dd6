/**
 * The grid proxy file (../shared/notes/grid-interop.md, "File layout"): PEM
 * blocks in the order proxy certificate, its unencrypted private key, then
 * the issuer chain down to the end-entity certificate (EEC), CA excluded.
 * Assembling one from /getproxy's CSR-mode answer, and reading one back for
 * certbridge-proxy-info and the renewer. Reading only parses: chain
 * validation is the relying party's job (grid-proxy-init -verify, openssl).
 */
import crypto from "node:crypto";
import * as der from "../pki/der";
import { decodeName, formatSlashDn } from "../pki/dn";
import { certificateParts, OID, serialDec } from "../pki/x509";
import { VOMS_OID } from "../voms/ac";
import { parseVomsExtension, type VomsAttributes } from "../voms/acInfo";

const PROXY_POLICY_NAMES: Record<string, string> = {
  [OID.inheritAll]: "impersonation",
  "1.3.6.1.5.5.7.21.2": "independent",
  "1.3.6.1.4.1.3536.1.1.1.9": "limited", // Globus limited proxy policy
};

export class ProxyFileError extends Error {}

/**
 * Put the caller's key into /getproxy's CSR-mode answer (proxy certificate,
 * then the chain): proxy certificate, key, chain. Refuses an answer whose
 * proxy does not certify this key.
 */
export function assembleProxyFile(issuedPem: string, privateKey: crypto.KeyObject): string {
  const certs = der.pemBlocks(issuedPem).filter((b) => b.label === "CERTIFICATE");
  if (certs.length < 2) throw new ProxyFileError("the portal's answer lacks the proxy certificate or its chain");
  const proxy = certificateParts(certs[0]!.der);
  const ours = new Uint8Array(crypto.createPublicKey(privateKey).export({ type: "spki", format: "der" }));
  if (Buffer.compare(Buffer.from(proxy.spki), Buffer.from(ours)) !== 0) {
    throw new ProxyFileError("the portal returned a proxy for another key than the one requested");
  }
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  return [der.toPem("CERTIFICATE", certs[0]!.der), keyPem, ...certs.slice(1).map((c) => der.toPem("CERTIFICATE", c.der))].join("");
}

interface RawExtension {
  oid: string;
  critical: boolean;
  value: Uint8Array;
}

/** The extensions of a DER certificate (RFC 5280 §4.1: tbsCertificate [3] EXPLICIT Extensions). */
function extensionsOf(certDer: Uint8Array): RawExtension[] {
  const cert = der.readTlv(certDer);
  const tbs = der.children(certDer, cert)[0];
  if (!tbs) throw new Error("certificate has no TBSCertificate");
  const explicit = der.children(certDer, tbs).find((t) => t.tag === 0xa3);
  if (!explicit) return [];
  const list = der.children(certDer, explicit)[0];
  if (!list) return [];
  return der.children(certDer, list).map((e) => {
    const parts = der.children(certDer, e);
    const oid = der.oidToString(der.content(certDer, parts[0]!));
    const critical = parts.length === 3 && parts[1]!.tag === 0x01 && certDer[parts[1]!.contentStart] !== 0;
    return { oid, critical, value: der.content(certDer, parts[parts.length - 1]!) };
  });
}

/** RFC 3820 §3.8 ProxyCertInfo: the policy language names the kind of proxy. */
function proxyKind(exts: RawExtension[]): string | null {
  const pci = exts.find((e) => e.oid === OID.proxyCertInfo);
  if (!pci) return null;
  const top = der.readTlv(pci.value);
  const policy = der.children(pci.value, top).find((t) => t.tag === 0x30);
  const language = policy && der.children(pci.value, policy)[0];
  const oid = language ? der.oidToString(der.content(pci.value, language)) : "";
  return PROXY_POLICY_NAMES[oid] ?? "restricted";
}

export interface ProxyFileInfo {
  subject: string;
  issuer: string;
  /** The end-entity certificate's subject: whom the proxy acts for. */
  identity: string;
  /** As grid-proxy-info words it, e.g. "RFC 3820 compliant impersonation proxy". */
  type: string;
  /** RSA modulus length of the proxy key. */
  bits: number;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  hasPrivateKey: boolean;
  keyMatches: boolean;
  voms: VomsAttributes[];
}

const slash = (name: Uint8Array) => formatSlashDn(decodeName(name));

export function inspectProxyFile(pem: string): ProxyFileInfo {
  const blocks = der.pemBlocks(pem);
  const certs = blocks.filter((b) => b.label === "CERTIFICATE");
  const key = blocks.find((b) => b.label === "PRIVATE KEY" || b.label === "RSA PRIVATE KEY");
  if (certs.length === 0) throw new ProxyFileError("the file holds no certificate");
  let parts;
  let exts;
  try {
    parts = certificateParts(certs[0]!.der);
    exts = extensionsOf(certs[0]!.der);
  } catch (e) {
    throw new ProxyFileError(`the first certificate cannot be parsed: ${(e as Error).message}`);
  }
  const kind = proxyKind(exts);
  // The EEC is the first certificate of the chain that is not itself a proxy (a proxy may sign a proxy).
  const eec = certs.slice(1).find((c) => proxyKind(extensionsOf(c.der)) === null);
  const spkiKey = crypto.createPublicKey({ key: Buffer.from(parts.spki), format: "der", type: "spki" });
  let keyMatches = false;
  if (key) {
    try {
      const privateKey = crypto.createPrivateKey({ key: pem.slice(pem.indexOf(`-----BEGIN ${key.label}-----`)), format: "pem" });
      keyMatches = Buffer.compare(crypto.createPublicKey(privateKey).export({ type: "spki", format: "der" }), Buffer.from(parts.spki)) === 0;
    } catch {
      keyMatches = false;
    }
  }
  const vomsExt = exts.find((e) => e.oid === VOMS_OID.acSequence);
  let voms: VomsAttributes[] = [];
  if (vomsExt) {
    try {
      voms = parseVomsExtension(vomsExt.value);
    } catch (e) {
      throw new ProxyFileError(`the VOMS extension cannot be parsed: ${(e as Error).message}`);
    }
  }
  return {
    subject: slash(parts.subject),
    issuer: slash(parts.issuer),
    identity: eec ? slash(certificateParts(eec.der).subject) : slash(parts.issuer),
    type: kind ? `RFC 3820 compliant ${kind} proxy` : "end entity credential",
    bits: spkiKey.asymmetricKeyDetails?.modulusLength ?? 0,
    serial: serialDec(parts.serial),
    notBefore: parts.notBefore,
    notAfter: parts.notAfter,
    hasPrivateKey: key !== undefined,
    keyMatches,
    voms,
  };
}
