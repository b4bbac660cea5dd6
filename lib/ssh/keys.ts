/**
 * SSH public keys people register for `ssh proxy@portal`: one line in
 * authorized_keys form ("<type> <base64> [comment]"), parsed from the wire
 * format (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4). Accepted: Ed25519,
 * ECDSA on P-256/384/521, RSA of at least 2048 bits. Refused with a reason:
 * DSA, short RSA, certificates, security-key types, anything malformed.
 */
import crypto from "node:crypto";
import ssh2 from "ssh2";

// ssh2 is CommonJS: its named exports are only reachable through the default import.
const { utils } = ssh2;
import { invalidRequest } from "../errors";

export const MIN_SSH_RSA_BITS = 2048;
const MAX_LINE = 16 * 1024;

export interface SshPublicKey {
  algorithm: "ssh-ed25519" | "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" | "ssh-rsa";
  /** The wire-format key blob. */
  blob: Buffer;
  /** OpenSSH's "SHA256:<base64 without padding>" (what `ssh-keygen -lf` prints). */
  fingerprint: string;
  /** "<algorithm> <base64>": what is stored, without the comment. */
  line: string;
  bits: number;
  comment: string;
}

const ECDSA = { "ecdsa-sha2-nistp256": 256, "ecdsa-sha2-nistp384": 384, "ecdsa-sha2-nistp521": 521 } as const;

export const sshFingerprint = (blob: Buffer) => `SHA256:${crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;

/** The length-prefixed strings of a wire blob (RFC 4251 §5 "string" and "mpint"). */
function wireFields(blob: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < blob.length) {
    if (at + 4 > blob.length) throw new Error("truncated");
    const n = blob.readUInt32BE(at);
    if (at + 4 + n > blob.length) throw new Error("truncated");
    out.push(blob.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return out;
}

const mpintBits = (m: Buffer) => {
  let i = 0;
  while (i < m.length && m[i] === 0) i++;
  return i === m.length ? 0 : (m.length - i) * 8 - (Math.clz32(m[i]!) - 24);
};

export function parseSshPublicKey(text: string): SshPublicKey {
  if (text.length > MAX_LINE) throw invalidRequest("the SSH key is too long (more than 16 KiB)");
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw invalidRequest("that is a private key: never share it. Paste the public key (the .pub file) instead");
  const lines = text.trim().split(/\r?\n/).filter((l) => l.trim() && !l.trim().startsWith("#"));
  if (lines.length !== 1) throw invalidRequest(lines.length ? "give one SSH public key (one line), not several" : "paste an SSH public key, e.g. the contents of ~/.ssh/id_ed25519.pub");
  const line = lines[0]!.trim();
  const m = /^([A-Za-z0-9@.-]+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*))?$/.exec(line);
  if (!m) throw invalidRequest('not an SSH public key: expected "<type> <base64> [comment]" as in ~/.ssh/id_ed25519.pub');
  const [, type, b64, comment = ""] = m as unknown as [string, string, string, string | undefined];
  if (type.includes("-cert-v01@openssh.com")) throw invalidRequest("SSH certificates are not accepted; paste the plain public key");
  if (type.startsWith("sk-")) throw invalidRequest("security-key (FIDO) SSH keys are not supported yet; use an ed25519, ecdsa or RSA key");
  if (type === "ssh-dss") throw invalidRequest("DSA keys are refused (obsolete and weak); use an ed25519, ecdsa or RSA (≥ 2048 bits) key");
  if (type !== "ssh-ed25519" && type !== "ssh-rsa" && !(type in ECDSA)) {
    throw invalidRequest(`SSH key type ${type} is not accepted; use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa (≥ 2048 bits)`);
  }
  const blob = Buffer.from(b64, "base64");
  let fields: Buffer[];
  try {
    fields = wireFields(blob);
  } catch {
    throw invalidRequest("the SSH key's data is truncated or corrupt");
  }
  if (fields[0]?.toString("latin1") !== type) throw invalidRequest(`the SSH key's data says ${JSON.stringify(fields[0]?.toString("latin1") ?? "")}, not ${type}`);
  let bits: number;
  if (type === "ssh-ed25519") {
    if (fields.length !== 2 || fields[1]!.length !== 32) throw invalidRequest("the ed25519 key's data is malformed");
    bits = 256;
  } else if (type === "ssh-rsa") {
    if (fields.length !== 3) throw invalidRequest("the RSA key's data is malformed");
    bits = mpintBits(fields[2]!);
    if (bits < MIN_SSH_RSA_BITS) throw invalidRequest(`RSA keys need at least ${MIN_SSH_RSA_BITS} bits; this one has ${bits}`);
  } else {
    const curve = type.slice("ecdsa-sha2-".length);
    if (fields.length !== 3 || fields[1]!.toString("latin1") !== curve) throw invalidRequest("the ECDSA key's data is malformed");
    bits = ECDSA[type as keyof typeof ECDSA];
  }
  // The last word: the SSH library that will verify signatures must accept the key too.
  const parsed = utils.parseKey(`${type} ${b64}`);
  if (parsed instanceof Error) throw invalidRequest(`the SSH key could not be read: ${parsed.message}`);
  return { algorithm: type as SshPublicKey["algorithm"], blob, fingerprint: sshFingerprint(blob), line: `${type} ${blob.toString("base64")}`, bits, comment: comment.trim() };
}
