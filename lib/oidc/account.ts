/**
 * The account behind a token, as the OpenID provider releases it (OpenID Connect Core §5.4):
 * which claims each scope releases, and their values from the person's record. The certificate
 * subject is fixed when the person is first seen (lib/issuance/identity.ts), so `cert_subject_dn`
 * names the DN every proxy carries.
 *
 * - `profile`: name, and where the upstream IdP gave them given_name, family_name,
 *   preferred_username (Core §5.4); the DN in both forms.
 * - `proxy` and the MasterPortal's `edu.uiuc.ncsa.myproxy.getcert`: the DN, in the slash form
 *   (`cert_subject_dn`, as the MasterPortal and grid tools print it) and RFC 4514/2253 form
 *   (`cert_subject_dn_rfc2253`, as `openssl -nameopt RFC2253` and Java print it), so a gateway
 *   can map a user to the proxies it gets without asking for `profile`.
 * - `eduperson_entitlement`: the person's entitlements as the upstream IdP released them
 *   (REFEDS/AARC-G002 URNs, what EGI Check-in gateways map groups from).
 * - `wlcg.groups`: the WLCG group paths (WLCG Common JWT Profile §3.2) of the person's default
 *   groups, from the same VO membership mapping as their VOMS attributes.
 */
import type { Account } from "oidc-provider";
import { findIdentityClaims, type Db } from "../db";
import { displayText } from "../displayText";
import { formatRfc4514, parseSlashDn } from "../pki/dn";

const DN_CLAIMS = ["cert_subject_dn", "cert_subject_dn_rfc2253"];

export const CLAIMS_BY_SCOPE = {
  openid: ["sub"],
  profile: ["name", "given_name", "family_name", "preferred_username", ...DN_CLAIMS],
  email: ["email"],
  proxy: DN_CLAIMS,
  "edu.uiuc.ncsa.myproxy.getcert": DN_CLAIMS,
  eduperson_entitlement: ["eduperson_entitlement"],
  "wlcg.groups": ["wlcg.groups"],
};

/** The RFC 4514 form of a slash DN; null for one that does not parse (never expected: subjects are built by the portal). */
function rfc2253(subject: string): string | null {
  try {
    return formatRfc4514(parseSlashDn(subject));
  } catch {
    return null;
  }
}

const str = (v: unknown) => (typeof v === "string" && v.trim() ? v.trim() : undefined);

/** Upstream entitlements: one string or a list (IdPs differ). */
function entitlementsOf(claims: Record<string, unknown>): string[] {
  const v = claims.eduperson_entitlement;
  if (typeof v === "string") return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/**
 * @param wlcgGroupsOf the person's default WLCG groups (wlcgTokens.ts heldGroups)
 */
export async function findAccount(db: Db, id: string, wlcgGroupsOf?: (accountId: string) => Promise<{ groups: string[] }>): Promise<Account | undefined> {
  const identity = await findIdentityClaims(db, id);
  if (!identity) return undefined;
  let upstream: Record<string, unknown> = {};
  try {
    upstream = JSON.parse(identity.claims) as Record<string, unknown>;
  } catch {
    // no claims recorded: only the portal's own
  }
  return {
    accountId: id,
    async claims(_use, scope) {
      const dn2253 = rfc2253(identity.subject);
      const givenName = str(upstream.given_name);
      const familyName = str(upstream.family_name);
      const preferred = str(upstream.preferred_username);
      const wantsGroups = scope.split(" ").includes("wlcg.groups");
      return {
        sub: id,
        name: displayText(identity.displayName),
        ...(identity.email ? { email: identity.email } : {}),
        ...(givenName ? { given_name: givenName } : {}),
        ...(familyName ? { family_name: familyName } : {}),
        ...(preferred ? { preferred_username: preferred } : {}),
        cert_subject_dn: identity.subject,
        ...(dn2253 ? { cert_subject_dn_rfc2253: dn2253 } : {}),
        eduperson_entitlement: entitlementsOf(upstream),
        ...(wantsGroups && wlcgGroupsOf ? { "wlcg.groups": (await wlcgGroupsOf(id)).groups } : {}),
      };
    },
  };
}
