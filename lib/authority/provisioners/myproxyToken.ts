/**
 * MyProxy GET (`myproxy-logon -l <DN> -S`): USERNAME names the person (their
 * subject DN), PASSPHRASE is an access token with the proxy scope, checked
 * exactly as /getproxy checks a bearer token (verifyProxyBearer). The token's
 * person must be the one USERNAME names. VOs and the lifetime cap are the
 * token's client's, as on /getproxy.
 */
import type Provider from "oidc-provider";
import { CertbridgeError } from "../../errors";
import { findIdentityClaims, type Db } from "../../db";
import { allowedVosOf } from "../../oidc/clients";
import type { VerifiedClaims } from "../../identity/subject";
import type { Provisioner, Requester } from "../types";
import { verifyProxyBearer } from "./gatewayToken";

export interface MyProxyTokenInput {
  /** The request's USERNAME: the person's subject DN. */
  username: string;
  /** The request's PASSPHRASE: an access token. */
  token: string;
  ip: string | null;
  /** Filled as soon as the token names its client, for the audit record of a refusal. */
  seen?: { clientId: string | null };
}

export interface MyProxyRequester extends Requester {
  client: { id: string; maxLifetimeSeconds: number };
  /** The access token's expiry (seconds since the epoch), for INFO. */
  tokenExpiresAt: number;
}

/** DNs compare as Globus prints them; a trailing slash or surrounding blanks are not part of a name. */
const normalDn = (dn: string) => dn.trim().replace(/\/+$/, "");

export function myproxyToken(deps: { db: Db; provider: Provider }): Provisioner<MyProxyTokenInput, MyProxyRequester> {
  return {
    name: "myproxy",
    async authorize(input) {
      const { at, client } = await verifyProxyBearer(deps.db, deps.provider, input.token, { seen: input.seen });
      const row = at.accountId ? await findIdentityClaims(deps.db, at.accountId) : null;
      if (!row) throw new CertbridgeError("invalid_token", "the account behind this token no longer exists");
      if (normalDn(input.username) !== row.subject) {
        throw new CertbridgeError("invalid_token", "the passphrase is not valid for this username (USERNAME must be the subject DN of the token's person)");
      }
      return {
        identity: { id: row.id, subject: row.subject },
        claims: JSON.parse(row.claims) as VerifiedClaims,
        actor: `client:${client.id}`,
        channel: "myproxy",
        ip: input.ip,
        client: { id: client.id, maxLifetimeSeconds: client.maxProxyLifetime },
        allowedVos: allowedVosOf(client),
        tokenExpiresAt: at.exp ?? 0,
        auditDetails: { channel: "myproxy", username: input.username },
      };
    },
  };
}
