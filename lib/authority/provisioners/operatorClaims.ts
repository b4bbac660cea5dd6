/**
 * The operator's channel (`certbridge proxy issue --claims FILE`, and tests):
 * the only provisioner that starts from raw claims. The operator vouches for
 * them; the person is found, or recorded on first sight, from the claims'
 * stable identifier (lib/issuance/identity.ts). A refusal here (claims that
 * yield no subject) is audited like a refusal at issuance.
 */
import { recordAudit, type Db } from "../../db";
import { CertbridgeError, asCertbridgeError } from "../../errors";
import { ensureIdentity, type IdentityCache } from "../../issuance/identity";
import type { VerifiedClaims } from "../../identity/subject";
import type { Config } from "../../config";
import type { Clock } from "../../clock";
import type { Provisioner, Requester } from "../types";

export interface OperatorClaimsInput {
  claims: VerifiedClaims;
  /** "cli:<user>", or what a test names. */
  actor: string;
  ip?: string | null;
  /** Issue as if through this gateway (its id and cap). */
  client?: { id: string; maxLifetimeSeconds?: number };
  auditDetails?: Record<string, unknown>;
}

export function operatorClaims(deps: { db: Db; clock: Clock; config: Pick<Config, "subject">; identities: IdentityCache }): Provisioner<OperatorClaimsInput> {
  return {
    name: "operator-claims",
    async authorize(input): Promise<Requester> {
      try {
        const identity = await ensureIdentity({ db: deps.db, clock: deps.clock, policy: deps.config.subject, identities: deps.identities }, input.claims, input.actor);
        return {
          identity,
          claims: input.claims,
          actor: input.actor,
          channel: "operator-claims",
          ip: input.ip,
          client: input.client,
          allowedVos: null,
          auditDetails: input.auditDetails,
        };
      } catch (e) {
        const err = asCertbridgeError(e);
        if (err instanceof CertbridgeError && err.status < 500) {
          await recordAudit(deps.db, {
            action: "proxy.refuse",
            actor: input.actor,
            outcome: "refused",
            clientId: input.client?.id ?? null,
            ip: input.ip ?? null,
            details: { stage: "identity", error: err.code, reason: err.message, ...input.auditDetails },
          });
        }
        throw e;
      }
    },
  };
}
