/**
 * The SSH keys a person may log in with at `ssh proxy@portal`: added and
 * removed from the account page, or by a gateway through the API with the
 * person's access token. Each change is audited in its own transaction.
 */
import { z } from "zod";
import { CertbridgeError, invalidRequest, notFound } from "../errors";
import { addSshKey, countSshKeys, deleteSshKey, isUniqueViolation, listSshKeys, type Db } from "../db";
import { parseSshPublicKey } from "./keys";

export const MAX_SSH_KEYS_PER_PERSON = 20;

const input = z.object({
  publicKey: z.string({ error: "publicKey is required" }).min(1, "paste an SSH public key"),
  label: z.string().trim().max(100, "labels are at most 100 characters").optional(),
});

export async function registerSshKey(db: Db, identityId: string, raw: unknown, audit: { actor: string; ip: string | null; clientId?: string | null }) {
  const r = input.safeParse(raw);
  if (!r.success) throw invalidRequest(r.error.issues.map((i) => i.message).join("; "));
  const key = parseSshPublicKey(r.data.publicKey);
  if ((await countSshKeys(db, identityId)) >= MAX_SSH_KEYS_PER_PERSON) {
    throw new CertbridgeError("conflict", `at most ${MAX_SSH_KEYS_PER_PERSON} SSH keys per person; delete one first`);
  }
  const label = r.data.label || key.comment.slice(0, 100) || `${key.algorithm} key`;
  try {
    return await addSshKey(db, { identityId, label, algorithm: key.algorithm, fingerprint: key.fingerprint, publicKey: key.line }, { action: "sshkey.add", actor: audit.actor, ip: audit.ip, clientId: audit.clientId ?? null });
  } catch (e) {
    // Do not say whose: a key belongs to one person only.
    if (isUniqueViolation(e)) throw new CertbridgeError("conflict", `this key (${key.fingerprint}) is already registered; each key can belong to one person only`);
    throw e;
  }
}

export async function removeSshKey(db: Db, identityId: string, id: string, audit: { actor: string; ip: string | null; clientId?: string | null }) {
  if (!(await deleteSshKey(db, identityId, id, { action: "sshkey.delete", actor: audit.actor, ip: audit.ip, clientId: audit.clientId ?? null }))) {
    throw notFound("no such SSH key");
  }
}

/** A person's keys (label, type, fingerprint, when added and last used); never the key material itself. */
export const sshKeysOf = (db: Db, identityId: string) => listSshKeys(db, identityId);
