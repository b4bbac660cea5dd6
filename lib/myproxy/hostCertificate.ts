/**
 * The MyProxy listener's TLS identity: the operator's host certificate and
 * key (settings), or a host certificate the portal's CA issues at start for
 * the public host name (kept in memory only; a restart issues a fresh one).
 * Its subject lies in the users' namespace so that the exported
 * signing_policy covers it (Globus checks the server's chain against it).
 */
import crypto from "node:crypto";
import fs from "node:fs";
import type { CertificateAuthority } from "../ca/authority";
import type { Clock } from "../clock";
import * as der from "../pki/der";
import { encodeName, parseSlashDn } from "../pki/dn";
import { encodeTbsCertificate, ext, keyIdentifier, KeyUsage, OID, randomSerial, signStructure } from "../pki/x509";
import { invalidConfig } from "../errors";

export interface HostCredential {
  /** PEM: the host certificate, then the CA certificate (clients bootstrap trust from the chain). */
  certPem: string;
  keyPem: string;
  subject: string;
}

const HOST_CERT_DAYS = 30;
const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";

/** A certificate for `hostName` signed by the portal's CA, with a fresh RSA-2048 key. */
export async function issueHostCertificate(ca: CertificateAuthority, subjectBase: string, hostName: string, clock: Clock): Promise<HostCredential> {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const spki = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
  const subject = `${subjectBase}/CN=${hostName}`;
  const now = clock().getTime();
  const notAfter = new Date(Math.min(now + HOST_CERT_DAYS * 86400_000, ca.parts.notAfter.getTime()));
  const isIp = /^[\d.]+$|:/.test(hostName);
  const san = isIp
    ? der.tlv(0x87, ipBytes(hostName))
    : der.tlv(0x82, new TextEncoder().encode(hostName));
  const tbs = encodeTbsCertificate({
    serial: randomSerial(),
    issuer: ca.parts.subject,
    subject: encodeName(parseSlashDn(subject)),
    notBefore: new Date(now - 5 * 60_000),
    notAfter,
    spki,
    signatureAlgorithm: ca.custody.signatureAlgorithm,
    extensions: [
      ext.basicConstraints(false),
      ext.keyUsage([KeyUsage.digitalSignature, KeyUsage.keyEncipherment]),
      { oid: OID.extKeyUsage, critical: false, value: der.sequence(der.oid(SERVER_AUTH)) },
      { oid: "2.5.29.17", critical: false, value: der.sequence(san) },
      ext.subjectKeyIdentifier(keyIdentifier(spki)),
      ext.authorityKeyIdentifier(ca.keyId),
    ],
  });
  const certDer = await signStructure(tbs, ca.custody);
  return {
    certPem: der.toPem("CERTIFICATE", certDer) + ca.certPem,
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    subject,
  };
}

function ipBytes(ip: string): Uint8Array {
  if (ip.includes(":")) throw invalidConfig(`the MyProxy listener cannot make a certificate for the IPv6 address ${ip}: set CERTBRIDGE_MYPROXY_HOST_CERT_FILE`);
  return Uint8Array.from(ip.split(".").map(Number));
}

/** The operator's host certificate and key files. */
export function loadHostCredential(certFile: string, keyFile: string): HostCredential {
  try {
    const certPem = fs.readFileSync(certFile, "utf8");
    const keyPem = fs.readFileSync(keyFile, "utf8");
    const cert = new crypto.X509Certificate(certPem);
    if (!cert.checkPrivateKey(crypto.createPrivateKey(keyPem))) throw new Error("the key does not belong to the certificate");
    return { certPem, keyPem, subject: cert.subject };
  } catch (e) {
    throw invalidConfig(`cannot use the MyProxy host certificate ${certFile} with key ${keyFile}: ${(e as Error).message}`, e);
  }
}
