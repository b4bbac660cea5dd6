/**
 * The account behind a token, as the OpenID provider releases it (OpenID Connect Core §5.4):
 * which claims each scope releases, and their values from the person's record. The certificate
 * subject is fixed when the person is first seen (lib/issuance/identity.ts), so `cert_subject_dn`
 * names the DN every proxy carries.
 */
import type { Account } from "oidc-provider";
import { findIdentity, type Db } from "../db";
import { displayText } from "../displayText";

export const CLAIMS_BY_SCOPE = {
  openid: ["sub"],
  profile: ["name", "cert_subject_dn"],
  email: ["email"],
};

export async function findAccount(db: Db, id: string): Promise<Account | undefined> {
  const identity = await findIdentity(db, id);
  if (!identity) return undefined;
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        name: displayText(identity.displayName),
        ...(identity.email ? { email: identity.email } : {}),
        cert_subject_dn: identity.subject,
      };
    },
  };
}
