/**
 * From verified upstream claims to the person's record and certificate
 * subject. The subject is fixed when the person is first seen: a later change
 * of display name does not change the DN that sites have authorised. A
 * different person whose claims produce a DN already taken gets the RCauth
 * collision suffix " <seq>" (1..999).
 */
import crypto from "node:crypto";
import { CertbridgeError } from "../errors";
import {
  createIdentity,
  findIdentityByIdentifierHash,
  findIdentityWithClaims,
  isSubjectTaken,
  isUniqueViolation,
  touchIdentity,
  type Db,
} from "../db";
import { subjectFromClaims, SEQUENCE_MAX, type SubjectPolicy, type VerifiedClaims } from "../identity/subject";
import type { Clock } from "../clock";

export type Identity = NonNullable<Awaited<ReturnType<typeof findIdentityByIdentifierHash>>>;

/** The name as the IdP asserted it (unnormalised), for display only. */
function displayNameOf(claims: VerifiedClaims): string {
  const full = typeof claims.name === "string" ? claims.name.trim() : "";
  if (full) return full;
  return [claims.given_name, claims.family_name].filter((p) => typeof p === "string" && p.trim()).join(" ");
}

const TOUCH_INTERVAL_MS = 5 * 60_000;

export const identifierHash = (identifier: string) => crypto.createHash("sha256").update(identifier, "utf8").digest("hex");

export async function ensureIdentity(
  deps: { db: Db; clock: Clock; policy: SubjectPolicy },
  claims: VerifiedClaims,
  actor: string,
): Promise<Identity> {
  const base = subjectFromClaims(claims, deps.policy);
  const hash = identifierHash(base.identifier);
  const now = deps.clock();
  const known = await findIdentityWithClaims(deps.db, hash);
  const email = typeof claims.email === "string" ? claims.email : null;
  if (known) {
    // Refresh what the IdP now says, but not on every proxy: one write per person per interval.
    const claimsJson = JSON.stringify(claims);
    if (known.claims !== claimsJson || now.getTime() - known.lastSeenAt.getTime() > TOUCH_INTERVAL_MS) {
      await touchIdentity(deps.db, known.id, { displayName: displayNameOf(claims), email, claims, at: now });
    }
    return known;
  }
  for (let seq = 0; seq <= SEQUENCE_MAX; seq++) {
    const s = seq === 0 ? base : subjectFromClaims(claims, deps.policy, seq);
    if (await isSubjectTaken(deps.db, s.dn)) continue;
    try {
      return await createIdentity(
        deps.db,
        {
          identifierHash: hash,
          issuer: claims.iss,
          sub: claims.sub,
          subject: s.dn,
          displayName: displayNameOf(claims),
          email,
          organisation: s.organisation,
          claims,
        },
        { action: "identity.create", actor, details: { subject: s.dn, issuer: claims.iss, sub: claims.sub, collisionSequence: seq || null } },
      );
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      // Lost a race: either the same person was created concurrently, or the DN was just taken.
      const raced = await findIdentityByIdentifierHash(deps.db, hash);
      if (raced) return raced;
    }
  }
  throw new CertbridgeError("conflict", "no free certificate subject for this identity (999 collisions)");
}
