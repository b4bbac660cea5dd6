/**
 * MyProxy GET (`myproxy-logon -l <DN> -S`): USERNAME names the person (their
 * subject DN, or their account name: the account id shown on /account), PASSPHRASE is an access token with the proxy scope, checked
 * exactly as /getproxy checks a bearer token (verifyProxyBearer). The token's
 * person must be the one USERNAME names. VOs and the lifetime cap are the
 * token's client's, as on /getproxy.
 */
import crypto from "node:crypto";
import type Provider from "oidc-provider";
import { CertbridgeError } from "../../errors";
import { consumeMyProxyCode, findIdentityClaims, type Db } from "../../db";
import type { Clock } from "../../clock";
import { allowedVosOf } from "../../oidc/clients";
import { personOf, type Provisioner, type Requester } from "../types";
import { verifyProxyBearer } from "./gatewayToken";

export interface MyProxyTokenInput {
  /** The request's USERNAME: the person's subject DN or account name. */
  username: string;
  /** The request's PASSPHRASE: an access token. */
  token: string;
  ip: string | null;
  /** Filled as soon as the token names its client, for the audit record of a refusal. */
  seen?: { clientId: string | null };
}

export type MyProxyRequester = Requester;

/** One-time retrieval codes start with this, so they are never taken for access tokens. */
export const MYPROXY_CODE_PREFIX = "mpc-";
/** The stored form of a code: SHA-256, hex (the code has 160 random bits). */
export const myproxyCodeHash = (code: string) => crypto.createHash("sha256").update(code, "utf8").digest("hex");
/** A new code: the prefix and 32 base32 characters (160 bits), easy to copy. */
export function newMyProxyCode(): string {
  const alphabet = "abcdefghijkmnpqrstuvwxyz23456789";
  return MYPROXY_CODE_PREFIX + [...crypto.randomBytes(32)].map((b) => alphabet[b & 31]).join("");
}

/** DNs compare as Globus prints them; a trailing slash or surrounding blanks are not part of a name. */
const normalDn = (dn: string) => dn.trim().replace(/\/+$/, "");
/** USERNAME names the person by subject DN (as -d sends it) or by account name (their account id, the `sub` this portal releases, shown on /account). */
const names = (username: string, row: { id: string; subject: string }) => normalDn(username) === row.subject || username.trim() === row.id;

export function myproxyToken(deps: { db: Db; provider: Provider; clock: Clock }): Provisioner<MyProxyTokenInput, MyProxyRequester> {
  return {
    name: "myproxy",
    async authorize(input) {
      if (input.token.startsWith(MYPROXY_CODE_PREFIX)) {
        const code = await consumeMyProxyCode(deps.db, myproxyCodeHash(input.token), deps.clock());
        const row = code ? await findIdentityClaims(deps.db, code.identityId) : null;
        if (!code || !row) throw new CertbridgeError("invalid_token", "the retrieval code is unknown, already used or expired");
        if (!names(input.username, row)) throw new CertbridgeError("invalid_token", "the passphrase is not valid for this username (USERNAME must be your subject DN or account name); the code is now used up");
        return {
          ...personOf(row),
          actor: `user:${row.id}`,
          channel: "myproxy",
          ip: input.ip,
          allowedVos: null,
          auditDetails: { channel: "myproxy", username: input.username, retrievalCode: code.id },
        };
      }
      const { at, client } = await verifyProxyBearer(deps.db, deps.provider, input.token, { seen: input.seen });
      const row = at.accountId ? await findIdentityClaims(deps.db, at.accountId) : null;
      if (!row) throw new CertbridgeError("invalid_token", "the account behind this token no longer exists");
      if (!names(input.username, row)) {
        throw new CertbridgeError("invalid_token", "the passphrase is not valid for this username (USERNAME must be the subject DN or account name of the token's person)");
      }
      return {
        ...personOf(row),
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
