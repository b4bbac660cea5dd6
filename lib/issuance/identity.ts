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
import { stableIdentifier, subjectFromClaims, SEQUENCE_MAX, type SubjectPolicy, type VerifiedClaims } from "../identity/subject";
import type { Clock } from "../clock";
import { Lru } from "../lru";
import { displayText } from "../displayText";

export type Identity = NonNullable<Awaited<ReturnType<typeof findIdentityByIdentifierHash>>>;

/** The name as the IdP asserted it (unnormalised), for display only. */
function displayNameOf(claims: VerifiedClaims): string {
  // Stored already safe to show (lib/displayText.ts): no bidi or other hidden controls, bounded length.
  const full = typeof claims.name === "string" ? displayText(claims.name) : "";
  if (full) return full;
  return displayText([claims.given_name, claims.family_name].filter((p) => typeof p === "string" && p.trim()).join(" "));
}

const TOUCH_INTERVAL_MS = 5 * 60_000;

export const identifierHash = (identifier: string) => crypto.createHash("sha256").update(identifier, "utf8").digest("hex");

/**
 * Known people by identifier hash. A person's id and subject never change, so
 * caching them is safe; the claims and the last write time decide when the
 * record is refreshed.
 */
export class IdentityCache extends Lru<{ identity: Identity; claimsJson: string; touchedAt: number }> {
  constructor(capacity = 10_000) {
    super(capacity);
  }
}

export async function ensureIdentity(
  deps: { db: Db; clock: Clock; policy: SubjectPolicy; identities?: IdentityCache },
  claims: VerifiedClaims,
  actor: string,
): Promise<Identity> {
  // A known person is found by their stable identifier alone: their DN is fixed, so it is not rebuilt
  // (claims that no longer yield a name still find them). The DN is made only for a new person.
  const hash = identifierHash(stableIdentifier(claims));
  const now = deps.clock();
  const email = typeof claims.email === "string" ? claims.email : null;
  const claimsJson = JSON.stringify(claims);
  const cached = deps.identities?.get(hash);
  const known = cached
    ? { ...cached.identity, claims: cached.claimsJson, lastSeenAt: new Date(cached.touchedAt) }
    : await findIdentityWithClaims(deps.db, hash);
  if (known) {
    const { claims: storedClaims, ...identity } = known;
    let touchedAt = known.lastSeenAt.getTime();
    // Refresh what the IdP now says, but not on every proxy: one write per person per interval.
    if (storedClaims !== claimsJson || now.getTime() - touchedAt > TOUCH_INTERVAL_MS) {
      await touchIdentity(deps.db, known.id, { displayName: displayNameOf(claims), email, claims, at: now });
      touchedAt = now.getTime();
    }
    deps.identities?.set(hash, { identity, claimsJson, touchedAt });
    return identity;
  }
  for (let seq = 0; seq <= SEQUENCE_MAX; seq++) {
    const s = subjectFromClaims(claims, deps.policy, seq || undefined);
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
