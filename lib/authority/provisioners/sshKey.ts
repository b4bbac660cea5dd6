/**
 * `ssh proxy@portal`: a person who proved possession of a registered SSH key
 * (lib/ssh/server.ts checks the signature). The person is the key's owner,
 * by id; the key's fingerprint goes into the audit record.
 */
import { findIdentityClaims, type Db } from "../../db";
import { invalidRequest } from "../../errors";
import { personOf, type Provisioner } from "../types";

export interface SshKeyInput {
  identityId: string;
  /** "SHA256:…" of the key that authenticated. */
  fingerprint: string;
  ip: string;
}

export function sshKey(deps: { db: Db }): Provisioner<SshKeyInput> {
  return {
    name: "ssh-key",
    async authorize({ identityId, fingerprint, ip }) {
      const row = await findIdentityClaims(deps.db, identityId);
      if (!row) throw invalidRequest("your account no longer exists");
      return {
        ...personOf(row),
        actor: `user:${identityId}`,
        channel: "ssh-key",
        ip,
        allowedVos: null,
        auditDetails: { channel: "ssh", sshKey: fingerprint },
      };
    },
  };
}
