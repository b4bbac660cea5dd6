/** SSH public keys people registered for `ssh proxy@portal`. */
import { recordAudit, type AuditInput } from "./audit";
import { newId, type Db } from "./client";

export const sshKeySelect = { id: true, identityId: true, label: true, algorithm: true, fingerprint: true, createdAt: true, lastUsedAt: true } as const;

export function listSshKeys(db: Db, identityId: string) {
  return db.sshKey.findMany({ where: { identityId }, orderBy: { createdAt: "asc" }, select: sshKeySelect });
}

export function countSshKeys(db: Db, identityId: string) {
  return db.sshKey.count({ where: { identityId } });
}

/** Register a key with its audit event; a fingerprint already registered (by anyone) is a unique violation. */
export async function addSshKey(db: Db, key: { identityId: string; label: string; algorithm: string; fingerprint: string; publicKey: string }, audit: AuditInput) {
  const id = newId();
  const [row] = await db.$transaction([
    db.sshKey.create({ data: { id, ...key }, select: sshKeySelect }),
    recordAudit(db, { ...audit, identityId: key.identityId, details: { ...audit.details, fingerprint: key.fingerprint, label: key.label, algorithm: key.algorithm } }),
  ]);
  return row;
}

/** Delete one of a person's keys with its audit event; false when it is not theirs (or gone). */
export async function deleteSshKey(db: Db, identityId: string, id: string, audit: AuditInput): Promise<boolean> {
  const key = await db.sshKey.findFirst({ where: { id, identityId }, select: { fingerprint: true, label: true } });
  if (!key) return false;
  const [deleted] = await db.$transaction([
    db.sshKey.deleteMany({ where: { id, identityId } }),
    recordAudit(db, { ...audit, identityId, details: { ...audit.details, fingerprint: key.fingerprint, label: key.label } }),
  ]);
  return deleted.count === 1;
}

/** The owner of a key presented at the SSH server (the blob must match, not only the fingerprint). */
export function findSshKeyByFingerprint(db: Db, fingerprint: string) {
  return db.sshKey.findUnique({ where: { fingerprint }, select: { ...sshKeySelect, publicKey: true } });
}

export function touchSshKey(db: Db, id: string, at: Date) {
  return db.sshKey.updateMany({ where: { id }, data: { lastUsedAt: at } });
}

/** A person's keys with their public key lines (public material: the MasterPortal's key API lists them). */
export function listSshKeysWithPublicKey(db: Db, identityId: string) {
  return db.sshKey.findMany({ where: { identityId }, orderBy: { createdAt: "asc" }, select: { ...sshKeySelect, publicKey: true } });
}
