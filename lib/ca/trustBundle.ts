/**
 * The IGTF-style trust directory a relying party installs as
 * /etc/grid-security/certificates (X509_CERT_DIR). Both hash names are
 * written, as IGTF distributions do: OpenSSL, Globus and VOMS-C look up the
 * SHA-1 "new" hash, canl-java (voms-proxy-init3, voms-api-java) the MD5 "old"
 * one. Globus refuses a CA without its signing_policy.
 *
 * The CRL's metadata is written under both hashes too: `<hash>.crl_url` (the
 * public CRL URL) and the IGTF `<hash>.info`, from which fetch-crl keeps the
 * sites' `<hash>.r0` fresh.
 */
import fs from "node:fs";
import path from "node:path";
import { crlUrlFile, igtfInfoFile, infoAlias, signingPolicy, namespacesPolicy, subjectHash, subjectHashOld } from "../pki/trustdir";
import { writeFileAtomic } from "../files";
import { currentCrl } from "./revocation";
import { lscFile, vomsesLine } from "../voms/vos";
import type { Certbridge } from "../certbridge";

export interface TrustBundle {
  directory: string;
  hash: string;
  hashOld: string;
  files: string[];
}

/** The trust directory's files by relative path (the CA under both hashes, its policies and CRL; VOMS material). */
export async function trustDirectoryContents(cb: Pick<Certbridge, "db" | "ca" | "clock" | "config" | "vos">): Promise<{ hash: string; hashOld: string; content: Record<string, string> }> {
  const hash = subjectHash(cb.ca.parts.subject);
  const hashOld = subjectHashOld(cb.ca.parts.subject);
  // Users' subjects, and the built-in attribute authorities' certificates.
  const namespaces = [cb.config.subject.base, ...(cb.vos.size ? [cb.config.voms.aaSubjectBase] : [])];
  // The stored CRL (signed on revocation and on schedule); one is signed only if none exists yet.
  const crl = await currentCrl(cb);
  const info = igtfInfoFile({
    alias: infoAlias(cb.ca.subject),
    url: cb.config.publicUrl,
    crlUrl: cb.config.ca.crlUrl,
    email: cb.config.ca.email,
    status: "unaccredited",
    certDer: cb.ca.parts.der,
    subject: cb.ca.subject,
  });
  const content: Record<string, string> = {};
  for (const h of new Set([hash, hashOld])) {
    content[`${h}.0`] = cb.ca.certPem;
    content[`${h}.signing_policy`] = signingPolicy(cb.ca.subject, namespaces);
    content[`${h}.namespaces`] = namespacesPolicy(cb.ca.subject, namespaces);
    content[`${h}.r0`] = crl.pem;
    content[`${h}.crl_url`] = crlUrlFile(cb.config.ca.crlUrl);
    content[`${h}.info`] = info;
  }
  // X509_VOMS_DIR material: vomsdir/<vo>/<aa host>.lsc, and the vomses lines.
  for (const vo of cb.vos.values()) {
    content[`vomsdir/${vo.config.name}/${vo.config.host}.lsc`] = lscFile(vo);
    content[`vomses/${vo.config.name}`] = vomsesLine(vo);
  }
  return { hash, hashOld, content };
}

export async function exportTrustDirectory(cb: Pick<Certbridge, "db" | "ca" | "clock" | "config" | "vos">, directory: string): Promise<TrustBundle> {
  const { hash, hashOld, content } = await trustDirectoryContents(cb);
  fs.mkdirSync(directory, { recursive: true, mode: 0o755 });
  for (const [name, text] of Object.entries(content)) {
    fs.mkdirSync(path.dirname(path.join(directory, name)), { recursive: true, mode: 0o755 });
    writeFileAtomic(path.join(directory, name), text, 0o644);
  }
  return { directory, hash, hashOld, files: Object.keys(content).sort() };
}
