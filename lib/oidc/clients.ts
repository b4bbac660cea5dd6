/**
 * The gateway registry: OAuth clients of the portal, registered by the
 * operator (CLI, clients file, later the admin console). Secrets are shown
 * once, stored sealed under the KEK (oidc-provider needs the clear secret to
 * check client_secret_basic), and never selected by listings.
 */
import crypto from "node:crypto";
import { z } from "zod";
import { CertbridgeError, invalidRequest, notFound } from "../errors";
import {
  deleteClientWithPayloads,
  ensureClient,
  findClientRow,
  findClientWithSealedSecret,
  listClientRows,
  replaceClientSealedSecret,
  updateClientStatus,
  updateClientCompatProfile,
  updateClientTokenPolicy,
  upsertClient,
  type AuditInput,
  type Db,
} from "../db";
import { openSealedKey, sealKey } from "../pki/seal";
import { CLI_CLIENT_ID, CLI_CLIENT_NAME, CLI_CLIENT_SCOPES, DEVICE_CODE_GRANT } from "./cliClient";
// the pure policy module only: the CLI loads this file and must not load oidc-provider
import { COMPAT_PROFILE_PROPERTY, compatProfileSchema, type CompatProfile } from "./compatProfile";
import { TtlCache } from "../lru";
import { parseStoredTokenPolicy, tokenPolicySchema, TOKEN_EXCHANGE_GRANT, TOKEN_POLICY_PROPERTY, WLCG_SCOPES, type TokenPolicy } from "./scopePolicy";
import { displayText } from "../displayText";

/** Scopes a gateway may be allowed. `proxy` and the MasterPortal name grant /getproxy. */
export const PROXY_SCOPES = ["proxy", "edu.uiuc.ncsa.myproxy.getcert"] as const;
/** `eduperson_entitlement` releases the person's upstream entitlements in userinfo (account.ts). */
export const GATEWAY_SCOPES = ["openid", "profile", "email", "offline_access", ...PROXY_SCOPES, "eduperson_entitlement"] as const;
/** Every scope a client may be allowed: the gateway scopes and the WLCG profile's (tokens for compute elements). */
export const CLIENT_SCOPES = [...GATEWAY_SCOPES, ...WLCG_SCOPES] as const;

const redirectUri = z.url({ protocol: /^https?$/ }).refine((u) => {
  const url = new URL(u);
  // OAuth 2.0 Security BCP §4.1.1: exact URIs, no fragments; plain http only for loopback.
  return !url.hash && (url.protocol === "https:" || ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname));
}, "redirect URIs must be https (http only on localhost) and have no fragment");

export const clientInput = z.object({
  id: z.string().regex(/^[A-Za-z0-9._-]{3,64}$/, "client ids are 3-64 of A-Z a-z 0-9 . _ -").optional(),
  // Shown on consent pages: hidden and bidi controls go (lib/displayText.ts) before the length check.
  name: z.string().max(1000).transform((s) => displayText(s)).pipe(z.string().min(1).max(100)),
  homepage: z.url({ protocol: /^https?$/ }).optional(),
  contact: z.email().optional(),
  public: z.boolean().default(false),
  /** Empty only for a robot: a confidential client with WLCG tokens (client credentials alone). */
  redirectUris: z.array(redirectUri).default([]),
  scopes: z.array(z.enum(CLIENT_SCOPES)).default(["openid", "profile", "email", "offline_access", "proxy", "edu.uiuc.ncsa.myproxy.getcert"]),
  maxProxyLifetimeSeconds: z.number().int().min(60).max(100 * 86400).default(86400),
  /** VOs whose attributes this gateway may request; absent: every VO the portal serves. */
  allowedVos: z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "VO names are letters, digits, . _ -")).max(64).optional(),
  /** Token format, audiences, compute.* permission, token exchange (scopePolicy.ts); absent: opaque tokens, no compute scopes. */
  tokenPolicy: tokenPolicySchema.optional(),
  /** Compatibility profile (compatProfile.ts): "masterportal" for a confidential MasterPortal/OA4MP gateway; absent: strict. */
  compatProfile: compatProfileSchema.optional(),
  /** Only from a clients file: a secret chosen by the operator. */
  secret: z.string().min(24, "client secrets must be at least 24 characters").optional(),
});
export type ClientInput = z.input<typeof clientInput>;

/** A robot: a confidential client with WLCG tokens, which may have no redirect URIs (client credentials alone). */
const isRobot = (isPublic: boolean, policy: TokenPolicy) => !isPublic && policy.format === "wlcg";

const secretContext = (id: string) => `certbridge:client-secret:${id}`;

function parseClient(input: ClientInput) {
  const r = clientInput.safeParse(input);
  if (!r.success) throw invalidRequest(`invalid client: ${r.error.issues.map((i) => `${i.path.join(".") || "client"}: ${i.message}`).join("; ")}`);
  if (r.data.id === CLI_CLIENT_ID) throw invalidRequest(`invalid client: the id ${CLI_CLIENT_ID} is reserved for the built-in command-line client`);
  if (r.data.public && r.data.secret) throw invalidRequest("invalid client: a public client has no secret");
  // The profile makes PKCE optional: only a client that authenticates at the token endpoint may have it.
  if (r.data.public && r.data.compatProfile) throw invalidRequest(`invalid client: the ${r.data.compatProfile} profile is for confidential clients only (a public client must use PKCE)`);
  return r.data;
}

/** Who changed a client, from where, and why (the admin console requires a reason). */
export type ClientAudit = Pick<AuditInput, "actor" | "ip"> & { reason?: string };

/**
 * Create, or with `upsert` (the clients file) or `update` (the console: the
 * client must exist) change, a client; returns the secret when one was
 * generated. The audit event records which fields changed.
 */
export async function registerClient(
  db: Db,
  kek: Buffer,
  input: ClientInput,
  audit: ClientAudit,
  opts: { upsert?: boolean; update?: boolean } = {},
) {
  const c = parseClient(input);
  const id = c.id ?? `gw-${crypto.randomBytes(6).toString("hex")}`;
  const existing = await findClientWithSealedSecret(db, id);
  if (existing && !opts.upsert && !opts.update) throw new CertbridgeError("conflict", `client ${id} already exists`);
  if (!existing && opts.update) throw notFound(`no client ${id}`);
  const policy = c.tokenPolicy ?? (existing && !opts.upsert ? parseStoredTokenPolicy(existing.tokenPolicy) : parseStoredTokenPolicy(null));
  if (c.redirectUris.length === 0 && !isRobot(c.public, policy) && !policy.deviceGrant) {
    throw invalidRequest("invalid client: redirectUris: at least one redirect URI is required (only a confidential client with WLCG tokens, or one allowed the device grant, may have none)");
  }
  if (c.public && policy.introspection) throw invalidRequest("invalid client: a resource server that introspects tokens must be confidential");
  const generated = !c.public && !c.secret && !existing?.secretEnc ? crypto.randomBytes(32).toString("base64url") : undefined;
  const secret = c.secret ?? generated;
  const data = {
    name: c.name,
    homepage: c.homepage ?? null,
    contact: c.contact ?? null,
    isPublic: c.public,
    redirectUris: JSON.stringify(c.redirectUris),
    scopes: c.scopes.join(" "),
    maxProxyLifetime: c.maxProxyLifetimeSeconds,
    allowedVos: c.allowedVos ? JSON.stringify(c.allowedVos) : null,
    // the console's editor leaves the policy alone (it has its own form); a clients file states it
    ...(c.tokenPolicy ? { tokenPolicy: JSON.stringify(c.tokenPolicy) } : opts.upsert ? { tokenPolicy: null } : {}),
    // every source states the profile (the console's form, a clients file entry, the CLI): absent = none
    compatProfile: c.compatProfile ?? null,
    ...(c.public ? { secretEnc: null } : secret ? { secretEnc: sealKey(kek, Buffer.from(secret, "utf8"), secretContext(id)) } : {}),
  };
  const client = await upsertClient(db, id, data, {
    action: existing ? "client.update" : "client.register",
    actor: audit.actor,
    ip: audit.ip ?? null,
    details: {
      name: c.name,
      public: c.public,
      redirectUris: c.redirectUris,
      scopes: c.scopes,
      maxProxyLifetimeSeconds: c.maxProxyLifetimeSeconds,
      allowedVos: c.allowedVos ?? null,
      ...(c.tokenPolicy ? { tokenPolicy: c.tokenPolicy } : {}),
      compatProfile: c.compatProfile ?? null,
      ...(existing ? { changed: changedFields(existing, data) } : {}),
      ...(generated ? { secret: "generated" } : {}),
      ...(audit.reason ? { reason: audit.reason } : {}),
    },
  });
  return { client, secret: generated };
}

function changedFields(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  return Object.keys(after).filter((k) => (k === "secretEnc" ? (before[k] === null) !== (after[k] === null) : before[k] !== after[k]));
}

/** A new secret for a confidential client, shown once; the old one stops working at once. */
export async function rotateClientSecret(db: Db, kek: Buffer, id: string, audit: ClientAudit): Promise<string> {
  refuseBuiltIn(id, "given a secret");
  const existing = await findClient(db, id);
  if (!existing) throw notFound(`no client ${id}`);
  if (existing.isPublic) throw invalidRequest(`client ${id} is public: it has no secret to rotate`);
  const secret = crypto.randomBytes(32).toString("base64url");
  await replaceClientSealedSecret(db, id, sealKey(kek, Buffer.from(secret, "utf8"), secretContext(id)), {
    action: "client.rotate_secret",
    actor: audit.actor,
    ip: audit.ip ?? null,
    details: { reason: audit.reason ?? null },
  });
  return secret;
}

/** The VOs a client may ask attributes for; null: any VO the portal serves. */
export const allowedVosOf = (client: { allowedVos: string | null }): string[] | null => (client.allowedVos ? (JSON.parse(client.allowedVos) as string[]) : null);


/** A client's token policy (the default — opaque tokens, no compute scopes — when none is set). */
export const tokenPolicyOf = (client: { tokenPolicy: string | null }): TokenPolicy => parseStoredTokenPolicy(client.tokenPolicy);

/** Set (or with null clear) a client's token policy; audited with the policy and the reason. */
export async function setClientTokenPolicy(db: Db, id: string, policy: TokenPolicy | null, audit: ClientAudit): Promise<void> {
  const existing = await findClient(db, id);
  if (!existing) throw notFound(`no client ${id}`);
  refuseBuiltIn(id, "given a token policy");
  if (!isRobot(existing.isPublic, policy ?? parseStoredTokenPolicy(null)) && (JSON.parse(existing.redirectUris) as string[]).length === 0) {
    throw invalidRequest(`client ${id} has no redirect URIs: it is a robot and needs WLCG tokens`);
  }
  await updateClientTokenPolicy(db, id, policy ? JSON.stringify(policy) : null, {
    action: "client.token_policy",
    actor: audit.actor,
    ip: audit.ip ?? null,
    details: { policy, reason: audit.reason ?? null },
  });
}

/** Set (or with null clear) a confidential client's compatibility profile; audited with the reason. */
export async function setClientCompatProfile(db: Db, id: string, profile: CompatProfile | null, audit: ClientAudit): Promise<void> {
  refuseBuiltIn(id, "given a compatibility profile");
  const existing = await findClient(db, id);
  if (!existing) throw notFound(`no client ${id}`);
  if (profile && existing.isPublic) throw invalidRequest(`client ${id} is public: the ${profile} profile is for confidential clients only (a public client must use PKCE)`);
  await updateClientCompatProfile(db, id, profile, {
    action: "client.compat_profile",
    actor: audit.actor,
    ip: audit.ip ?? null,
    details: { profile, reason: audit.reason ?? null },
  });
}

export function listClients(db: Db) {
  return listClientRows(db);
}

export async function findClient(db: Db, id: string) {
  const row = await findClientRow(db, id);
  // The built-in CLI client exists even before its row does (a portal that never bootstrapped).
  return row ?? (id === CLI_CLIENT_ID ? cliClientRow() : null);
}

/** The built-in client's row, made once at start so operators see it and can suspend it. */
export async function ensureCliClientRow(db: Db): Promise<void> {
  const { id, ...data } = cliClientRow();
  await ensureClient(db, id, data);
}

/** The built-in client can be suspended and reactivated, never edited, re-keyed or removed. */
function refuseBuiltIn(id: string, what: string) {
  if (id === CLI_CLIENT_ID) throw invalidRequest(`the built-in command-line client cannot be ${what}; suspend it to switch terminal logins off`);
}

export async function removeClient(db: Db, id: string, audit: ClientAudit) {
  refuseBuiltIn(id, "removed");
  const existing = await findClient(db, id);
  if (!existing) throw notFound(`no client ${id}`);
  // Its grants and tokens go with it.
  await deleteClientWithPayloads(db, id, {
    action: "client.remove",
    actor: audit.actor,
    ip: audit.ip ?? null,
    details: { name: existing.name, reason: audit.reason ?? null },
  });
}

export async function setClientStatus(db: Db, id: string, status: "active" | "suspended", audit: ClientAudit) {
  if (!(await findClient(db, id))) throw notFound(`no client ${id}`);
  await updateClientStatus(db, id, status, {
    action: status === "suspended" ? "client.suspend" : "client.activate",
    actor: audit.actor,
    ip: audit.ip ?? null,
    details: { reason: audit.reason ?? null },
  });
}

/** Ids of clients that registered themselves (RFC 7591, registration.ts). */
export const DYNAMIC_CLIENT_PREFIX = "dyn-";

/** A client's name as people see it: a self-registered client's name was chosen by a stranger, and says so. */
export function displayClientName(client: { id: string; name: string }): string {
  return client.id.startsWith(DYNAMIC_CLIENT_PREFIX) ? `${client.name} (self-registered)` : client.name;
}

/** oidc-provider client metadata for an active client (suspended and unknown clients do not exist to the protocol). */
export async function findGatewayClientMetadata(db: Db, kek: Buffer, id: string) {
  const row = await findClientWithSealedSecret(db, id);
  if (id === CLI_CLIENT_ID) return !row || row.status === "active" ? cliClientMetadata() : undefined; // built-in CLI client (issue 6)
  if (!row || row.status !== "active") return undefined;
  const policy = parseStoredTokenPolicy(row.tokenPolicy);
  const redirectUris = JSON.parse(row.redirectUris) as string[];
  const interactive = redirectUris.length > 0;
  // RFC 8628 for terminal tools (oidc-agent) the operator allowed it (token policy `deviceGrant`)
  const device = policy.deviceGrant;
  const grants = [
    ...(interactive ? ["authorization_code"] : []),
    ...(device ? [DEVICE_CODE_GRANT] : []),
    ...((interactive || device) && row.scopes.split(" ").includes("offline_access") ? ["refresh_token"] : []),
    // robots: only confidential clients with WLCG tokens (DIRAC's pilot tokens)
    ...(policy.format === "wlcg" && !row.isPublic && row.secretEnc ? ["client_credentials"] : []),
    ...(policy.exchange && !row.isPublic && row.secretEnc ? [TOKEN_EXCHANGE_GRANT] : []),
  ];
  return {
    client_id: row.id,
    ...(row.isPublic || !row.secretEnc
      ? { token_endpoint_auth_method: "none" }
      : {
          client_secret: Buffer.from(openSealedKey(kek, row.secretEnc, secretContext(row.id))).toString("utf8"),
          token_endpoint_auth_method: "client_secret_basic",
        }),
    client_name: displayClientName(row),
    ...(row.homepage ? { client_uri: row.homepage } : {}),
    redirect_uris: redirectUris,
    grant_types: grants,
    response_types: interactive ? ["code"] : [],
    scope: row.scopes,
    certbridge_max_proxy_lifetime: row.maxProxyLifetime,
    ...(row.tokenPolicy ? { [TOKEN_POLICY_PROPERTY]: row.tokenPolicy } : {}),
    // MasterPortal/OA4MP clients read auth_time from every ID token (OpenID Connect Registration §2).
    ...(row.compatProfile && !row.isPublic ? { [COMPAT_PROFILE_PROPERTY]: row.compatProfile, require_auth_time: true } : {}),
  };
}

// --- The built-in command-line client (issue 6: certbridge-proxy-init) -------------------------
//
// certbridge-proxy-init logs people in with the device authorization grant (RFC 8628) and renews
// with refresh tokens. It runs on the user's own machine and cannot keep a secret, so it is a
// public client (RFC 6749 §2.1, token_endpoint_auth_method "none"). It exists on every portal
// without registration; gateways can never take its id. No redirect URIs: the device grant has
// no front channel back to the client.

export { CLI_CLIENT_ID } from "./cliClient";
/** Its own cap is the schema's maximum, so the portal's CERTBRIDGE_PROXY_MAX_LIFETIME is what limits it. */
const CLI_CLIENT_MAX_PROXY_LIFETIME = 100 * 86400;

function cliClientRow() {
  return {
    id: CLI_CLIENT_ID,
    name: CLI_CLIENT_NAME,
    homepage: null,
    contact: null,
    isPublic: true,
    redirectUris: "[]",
    scopes: CLI_CLIENT_SCOPES,
    maxProxyLifetime: CLI_CLIENT_MAX_PROXY_LIFETIME,
    allowedVos: null as string | null,
    tokenPolicy: null as string | null,
    compatProfile: null as string | null,
    status: "active",
    createdAt: new Date(),
    updatedAt: new Date(),
  };
}

function cliClientMetadata(): { client_secret?: string } & Record<string, unknown> {
  return {
    client_id: CLI_CLIENT_ID,
    token_endpoint_auth_method: "none",
    client_name: CLI_CLIENT_NAME,
    redirect_uris: [] as string[],
    grant_types: [DEVICE_CODE_GRANT, "refresh_token"],
    response_types: [] as string[],
    scope: CLI_CLIENT_SCOPES,
    certbridge_max_proxy_lifetime: CLI_CLIENT_MAX_PROXY_LIFETIME,
  };
}
// --- end of the built-in command-line client ----------------------------------------------------

/**
 * The compatibility profile of an active confidential client, for the request pre-processor
 * (compatProfile.ts); cached for 2 s, like /getproxy's client cache, so a change reaches every
 * process at once in practice.
 */
export function compatProfileLookup(db: Db): (clientId: string) => Promise<CompatProfile | null> {
  const cache = new TtlCache<{ profile: CompatProfile | null }>(1024, 2_000);
  return async (clientId) =>
    (
      await cache.getOrLoad(clientId, async () => {
        const row = await findClientRow(db, clientId);
        const profile = row && row.status === "active" && !row.isPublic ? compatProfileSchema.safeParse(row.compatProfile) : null;
        return { profile: profile?.success ? profile.data : null };
      })
    )?.profile ?? null;
}
