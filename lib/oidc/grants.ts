/**
 * A person's consents, as the account console shows them: oidc-provider's
 * Grant payloads read here (the one place that knows their JSON shape), over
 * the plain rows of lib/db.
 */
import { deleteGrantAndTokensOfAccount, listGrantPayloadsOfAccount, type AuditInput, type Db } from "../db";

/** The parts of oidc-provider's Grant payload the consoles show. */
interface GrantPayload {
  clientId?: string;
  iat?: number;
  openid?: { scope?: string };
}

const parseGrant = (payload: string): GrantPayload => JSON.parse(payload) as GrantPayload;

/** A person's consents: their grants, with the latest expiry of their refresh tokens. */
export async function listGrantsOfAccount(db: Db, accountId: string, now: Date) {
  const grants = await listGrantPayloadsOfAccount(db, accountId, now);
  return grants.map((g) => {
    const p = parseGrant(g.payload);
    return {
      grantId: g.grantId,
      clientId: g.clientId ?? p.clientId ?? "?",
      scopes: (p.openid?.scope ?? "").split(" ").filter(Boolean),
      grantedAt: p.iat ? new Date(p.iat * 1000) : null,
      expiresAt: g.expiresAt,
      refreshTokens: g.refreshTokens,
      refreshUntil: g.refreshUntil,
    };
  });
}

/**
 * Withdraw a consent: the grant and every token issued under it (RFC 7009
 * §2.1 cascading), with its audit event, in one transaction. Only the
 * grant's own person may do this; returns the grant's client, or null when
 * the grant is not theirs (or is gone).
 */
export async function deleteGrantOfAccount(db: Db, accountId: string, grantId: string, audit: AuditInput): Promise<string | null> {
  const deleted = await deleteGrantAndTokensOfAccount(db, accountId, grantId, audit);
  return deleted?.clientId ?? null;
}
