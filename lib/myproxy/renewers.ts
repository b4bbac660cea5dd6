/**
 * Registering MyProxy renewers (VO boxes): the host certificate's subject and the CA directory
 * or file that vouches for it (X509_CERT_DIR style: hash.N certificates, hash.rN CRLs, or PEM
 * bundles). The certificates and CRLs are read once and stored, so every portal process checks
 * the same thing; `renewer add` again with the same subject refreshes them (e.g. after fetch-crl).
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { saveMyProxyRenewer, type Db } from "../db";
import { invalidRequest } from "../errors";
import { pemBlocks, toPem } from "../pki/der";
import { formatSlashDn, parseSlashDn } from "../pki/dn";
import { parseCaBundle, parseCrls } from "./renewerChain";

const CERT_FILE = /(\.\d+|\.pem|\.crt)$/;
const CRL_FILE = /(\.r\d+|\.crl|\.crl\.pem)$/;
const MAX_BYTES = 8 * 1024 * 1024;

function readFiles(p: string, kind: "ca" | "crl"): string[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw invalidRequest(`cannot read ${p}`);
  }
  if (st.isFile()) return [fs.readFileSync(p, "latin1")];
  if (!st.isDirectory()) throw invalidRequest(`${p} is neither a file nor a directory`);
  const pattern = kind === "ca" ? CERT_FILE : CRL_FILE;
  return fs
    .readdirSync(p, { withFileTypes: true })
    .filter((e) => e.isFile() && pattern.test(e.name) && !(kind === "ca" && CRL_FILE.test(e.name)))
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((e) => fs.readFileSync(path.join(p, e.name), "latin1"));
}

/** PEM blocks of one label, deduplicated (a CA directory holds each certificate under two hashes). */
function collect(texts: string[], label: string): string {
  const seen = new Set<string>();
  let out = "";
  for (const b of texts.flatMap((t) => pemBlocks(t)).filter((b) => b.label === label)) {
    const key = crypto.createHash("sha256").update(b.der).digest("hex");
    if (seen.has(key)) continue;
    seen.add(key);
    out += toPem(label, b.der);
  }
  if (out.length > MAX_BYTES) throw invalidRequest(`more than ${MAX_BYTES} bytes of ${label}s: name the renewer's CA, not a whole directory of them`);
  return out;
}

export interface RegisterRenewerInput {
  /** The host certificate's subject, slash form (/DC=ch/DC=cern/OU=computers/CN=vobox.example.org). */
  subject: string;
  label?: string;
  /** A CA directory or PEM file with the CA certificate(s) that vouch for the host. */
  caPath: string;
  /** A CRL file or directory (optional; the CA directory's hash.rN files are read anyway). */
  crlPath?: string;
}

export async function registerRenewer(db: Db, input: RegisterRenewerInput, audit: { actor: string; ip?: string | null }) {
  let subject: string;
  try {
    subject = formatSlashDn(parseSlashDn(input.subject.trim()));
  } catch (e) {
    throw invalidRequest(`the renewer's subject must be a DN in slash form (/DC=…/CN=host): ${(e as Error).message}`);
  }
  const caPem = collect(readFiles(input.caPath, "ca"), "CERTIFICATE");
  const cas = parseCaBundle(caPem).filter((c) => c.x509.ca);
  if (cas.length === 0) throw invalidRequest(`no CA certificate in ${input.caPath}`);
  const crlTexts = [...(fs.statSync(input.caPath).isDirectory() ? readFiles(input.caPath, "crl") : []), ...(input.crlPath ? readFiles(input.crlPath, "crl") : [])];
  const crlPem = collect(crlTexts, "X509 CRL");
  // Every CRL must parse and be the registered CAs'; one of an unknown issuer is a mistake worth saying.
  for (const crl of parseCrls(crlPem)) {
    if (!cas.some((c) => c.subject === crl.issuer)) throw invalidRequest(`the CRL of ${crl.issuer} belongs to none of the registered CA certificates`);
  }
  const caOnly = cas.map((c) => toPem("CERTIFICATE", new Uint8Array(c.x509.raw))).join("");
  const label = input.label?.trim() || subject.split("/CN=").at(-1) || subject;
  if (label.length > 200) throw invalidRequest("the label is too long (200 characters at most)");
  const saved = await saveMyProxyRenewer(db, { subject, label, caPem: caOnly, crlPem }, { action: "myproxy.renewer.add", actor: audit.actor, ip: audit.ip ?? null });
  return { ...saved, subject, label, caCertificates: cas.map((c) => c.subject), crls: parseCrls(crlPem).map((c) => ({ issuer: c.issuer, nextUpdate: c.nextUpdate })) };
}
