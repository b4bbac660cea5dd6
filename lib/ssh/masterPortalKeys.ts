/**
 * The MasterPortal's SSH-key API (`/sshkey`), beside Certbridge's own
 * `/api/ssh-keys`: a gateway manages a person's keys with that person's
 * access token (`Authorization: Bearer` or `access_token`), GET or POST,
 * parameters `action` (add, remove, get, list), `label`, `pubkey`,
 * `description`, optional `client_id` (must be the token's client). Keys are
 * named by label, unique per person; an add without a label gets
 * `ssh-key-N` as the MasterPortal does. Listing answers
 * `{"ssh_keys": [{"label", "username", "pub_key", "description"?}]}`
 * (always an array). The changes go through the same registry functions
 * (lib/ssh/registry.ts) and audit records as the account page and the API.
 */
import { z } from "zod";
import { CertbridgeError, asCertbridgeError, invalidRequest, notFound } from "../errors";
import { findIdentity, listSshKeysWithPublicKey, type Db } from "../db";
import { errorResult, type HttpRequestParts, type HttpResult } from "../http";
import { registerSshKey, removeSshKey } from "./registry";

const LABEL_PREFIX = "ssh-key-";

const params = z.object({
  action: z.enum(["add", "remove", "get", "list"], { error: "action must be add, remove, get or list" }),
  label: z.string().trim().max(100, "labels are at most 100 characters").optional(),
  pubkey: z.string().max(16 * 1024).optional(),
  description: z.string().max(500).optional(),
  client_id: z.string().optional(),
  access_token: z.string().optional(),
});

function parse(list: [string, string][]) {
  const seen = new Map<string, string>();
  for (const [k, v] of list) {
    if (!params.shape[k as keyof typeof params.shape]) continue; // unknown parameters are ignored
    if (seen.has(k)) throw invalidRequest(`parameter ${k} was given more than once`);
    seen.set(k, v);
  }
  if (!seen.has("action")) throw invalidRequest("missing mandatory action parameter (add, remove, get or list)");
  const r = params.safeParse(Object.fromEntries(seen));
  if (!r.success) throw invalidRequest(r.error.issues.map((i) => i.message).join("; "));
  return r.data;
}

/** The next free `ssh-key-N` (one above the highest in use), as the MasterPortal numbers them. */
function nextLabel(labels: string[]): string {
  const used = labels.map((l) => new RegExp(`^${LABEL_PREFIX}(\\d+)$`).exec(l)?.[1]).filter((n): n is string => n !== undefined).map(Number);
  return `${LABEL_PREFIX}${Math.max(0, ...used) + 1}`;
}

export interface SshKeyApiDeps {
  db: Db;
  /** The person and client behind a bearer token (the /api/ssh-keys checks: live, client active, consent, proxy scope). */
  authenticate: (authorization: string | null, accessTokenParam: string | undefined) => Promise<{ identityId: string; clientId: string }>;
}

export async function masterPortalSshKeys(deps: SshKeyApiDeps, req: HttpRequestParts): Promise<HttpResult> {
  try {
    const p = parse(req.params);
    const who = await deps.authenticate(req.authorization, p.access_token);
    if (p.client_id !== undefined && p.client_id !== who.clientId) throw invalidRequest("client_id does not match the access token");
    const audit = { actor: `client:${who.clientId}`, ip: req.ip, clientId: who.clientId };
    const keys = await listSshKeysWithPublicKey(deps.db, who.identityId);
    const person = await findIdentity(deps.db, who.identityId);
    if (!person) throw new CertbridgeError("invalid_token", "the account behind this token no longer exists");
    const render = (k: (typeof keys)[number]) => ({ label: k.label, username: person.subject, pub_key: k.publicKey });
    const byLabel = (label: string | undefined) => {
      if (!label) throw invalidRequest('missing mandatory "label" parameter');
      const key = keys.find((k) => k.label === label);
      if (!key) throw notFound(`no SSH key labelled ${JSON.stringify(label)}`);
      return key;
    };
    switch (p.action) {
      case "list":
        return json(200, { ssh_keys: keys.map(render) });
      case "get":
        return json(200, { ssh_keys: [render(byLabel(p.label))] });
      case "remove":
        await removeSshKey(deps.db, who.identityId, byLabel(p.label).id, audit);
        return json(200, { removed: p.label });
      case "add": {
        if (!p.pubkey) throw invalidRequest("missing mandatory parameter pubkey");
        const label = p.label || nextLabel(keys.map((k) => k.label));
        if (keys.some((k) => k.label === label)) throw new CertbridgeError("conflict", `you already have an SSH key labelled ${JSON.stringify(label)}`);
        const key = await registerSshKey(deps.db, who.identityId, { publicKey: p.pubkey, label }, audit);
        return json(200, { ssh_keys: [{ label: key.label, username: person.subject, pub_key: p.pubkey.trim().split(/\s+/).slice(0, 2).join(" ") }] });
      }
    }
  } catch (e) {
    return errorResult(asCertbridgeError(e), "json");
  }
}

function json(status: number, body: unknown): HttpResult {
  return { status, headers: { "content-type": "application/json", "cache-control": "no-store" }, body: JSON.stringify(body) };
}
