/**
 * RFC 7591 dynamic client registration, for `oidc-gen` (oidc-agent) and tools like it. Off by
 * default (CERTBRIDGE_DYNAMIC_REGISTRATION=1 switches it on); when off, POST /oidc/reg is 404
 * and discovery names no registration endpoint.
 *
 * Anyone may register, so a registered client starts restricted (README "oidc-agent"):
 * - its scopes are the requested ones within CERTBRIDGE_REGISTRATION_SCOPES (default
 *   `openid profile offline_access`: no proxies, no VO attributes, no compute.*); an operator who
 *   trusts it gives it more with `certbridge-admin client` or the admin console;
 * - the consent and device pages show its name with "(self-registered)" (clients.ts
 *   displayClientName), so a name a stranger chose never looks vetted by the operator; the name is
 *   stored and answered as sent (oidc-gen refuses a response whose client_name differs);
 * - its id starts `dyn-`, and at most CERTBRIDGE_REGISTRATION_MAX_CLIENTS such clients exist;
 * - redirect URIs follow the registry's rules (https, or http on loopback; RFC 8252 §7.3); others
 *   (oidc-agent's private-use scheme) are left out of the registration, and the response lists the
 *   ones kept (RFC 7591 §3.2.1: the server may replace requested metadata);
 * - the device grant (RFC 8628) when asked for; no client credentials, no token exchange;
 * - no RFC 7592 management: the operator edits, suspends or removes it like any client.
 * Each registration is audited (client.register, actor `registration`).
 */
import type { IncomingMessage } from "node:http";
import crypto from "node:crypto";
import { z } from "zod";
import { countClientsWithIdPrefix, type Db } from "../db";
import { CertbridgeError } from "../errors";
import { CLIENT_SCOPES, DYNAMIC_CLIENT_PREFIX, registerClient } from "./clients";
import { DEVICE_CODE_GRANT } from "./cliClient";
import { readBoundedBody } from "../requestBody";

export const REGISTRATION_PATH = "/oidc/reg";
export { DYNAMIC_CLIENT_PREFIX };
const MAX_BODY = 16 * 1024;
const SUPPORTED_GRANTS = ["authorization_code", "refresh_token", DEVICE_CODE_GRANT] as const;

const registrationRequest = z.object({
  redirect_uris: z.array(z.string().max(2000)).max(20).default([]),
  token_endpoint_auth_method: z.enum(["none", "client_secret_basic", "client_secret_post"]).default("client_secret_basic"),
  grant_types: z.array(z.string().max(200)).max(20).default(["authorization_code"]),
  response_types: z.array(z.string().max(100)).max(10).optional(),
  client_name: z.string().trim().min(1).max(60).optional(),
  client_uri: z.string().max(2000).optional(),
  scope: z.string().max(2000).optional(),
  contacts: z.array(z.string().max(200)).max(10).optional(),
});

/** RFC 7591 §3.2.2 error response. */
class RegistrationError extends Error {
  constructor(
    readonly code: "invalid_client_metadata" | "invalid_redirect_uri" | "invalid_request",
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const isAcceptedRedirect = (u: string) => {
  try {
    const url = new URL(u);
    return !url.hash && (url.protocol === "https:" || (url.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname)));
  } catch {
    return false;
  }
};

export interface RegistrationSettings {
  scopes: readonly string[];
  maxClients: number;
}

/** Register one client from an RFC 7591 request body; returns the RFC 7591 §3.2.1 response. */
export async function registerDynamicClient(db: Db, kek: Buffer, settings: RegistrationSettings, body: unknown, ip: string | null) {
  const r = registrationRequest.safeParse(body);
  if (!r.success) throw new RegistrationError("invalid_client_metadata", r.error.issues.map((i) => `${i.path.join(".") || "request"}: ${i.message}`).join("; "));
  const req = r.data;
  const unsupported = req.grant_types.find((g) => !(SUPPORTED_GRANTS as readonly string[]).includes(g));
  if (unsupported) throw new RegistrationError("invalid_client_metadata", `grant type ${unsupported} cannot be registered here`);
  if (req.response_types && req.response_types.some((t) => t !== "code")) throw new RegistrationError("invalid_client_metadata", "only the response type code is supported");
  const device = req.grant_types.includes(DEVICE_CODE_GRANT);
  const code = req.grant_types.includes("authorization_code");
  const redirectUris = code ? req.redirect_uris.filter(isAcceptedRedirect) : [];
  if (code && redirectUris.length === 0) {
    throw new RegistrationError("invalid_redirect_uri", "the authorization code grant needs at least one https redirect URI (http only on localhost)");
  }
  if (!code && !device) throw new RegistrationError("invalid_client_metadata", "register the authorization_code or the device_code grant");
  const allowed = settings.scopes.filter((s) => (CLIENT_SCOPES as readonly string[]).includes(s));
  const asked = req.scope === undefined ? allowed : req.scope.split(" ").filter(Boolean);
  const scopes = allowed.filter((s) => asked.includes(s));
  if (scopes.length === 0) throw new RegistrationError("invalid_client_metadata", `none of the requested scopes may be registered here (allowed: ${allowed.join(" ")})`);
  if ((await countClientsWithIdPrefix(db, DYNAMIC_CLIENT_PREFIX)) >= settings.maxClients) {
    throw new RegistrationError("invalid_request", "this portal takes no more registrations; ask its operator for a client", 403);
  }
  const isPublic = req.token_endpoint_auth_method === "none";
  const id = `${DYNAMIC_CLIENT_PREFIX}${crypto.randomBytes(9).toString("base64url")}`;
  const clientUri = req.client_uri && /^https:\/\/\S+$/.test(req.client_uri) ? req.client_uri : undefined;
  const contact = req.contacts?.find((c) => z.email().safeParse(c).success);
  const { client, secret } = await registerClient(
    db,
    kek,
    {
      id,
      name: req.client_name ?? "Client",
      ...(clientUri ? { homepage: clientUri } : {}),
      ...(contact ? { contact } : {}),
      public: isPublic,
      redirectUris,
      scopes: scopes as (typeof CLIENT_SCOPES)[number][],
      ...(device ? { tokenPolicy: { deviceGrant: true } } : {}),
    },
    { actor: "registration", ip },
  );
  const grants = [...(code ? ["authorization_code"] : []), ...(device ? [DEVICE_CODE_GRANT] : []), ...(scopes.includes("offline_access") ? ["refresh_token"] : [])];
  return {
    client_id: client.id,
    ...(secret ? { client_secret: secret, client_secret_expires_at: 0 } : {}),
    client_id_issued_at: Math.floor(client.createdAt.getTime() / 1000),
    client_name: client.name,
    redirect_uris: redirectUris,
    grant_types: grants,
    response_types: code ? ["code"] : [],
    token_endpoint_auth_method: isPublic ? "none" : "client_secret_basic",
    scope: scopes.join(" "),
  };
}

interface Ctx {
  method: string;
  path: string;
  ip: string;
  req: IncomingMessage;
  status: number;
  body: unknown;
  is: (t: string) => string | false | null;
  set: (name: string, value: string) => void;
}

/**
 * The registration endpoint and its discovery entry, as a step before oidc-provider (whose own
 * registration feature would store clients through the adapter; ours live in the registry).
 */
export function registrationEndpoint(db: Db, kek: Buffer, issuer: string, settings: RegistrationSettings) {
  return async (ctx: Ctx, next: () => Promise<unknown>) => {
    if (ctx.path === "/.well-known/openid-configuration") {
      await next();
      if (ctx.status === 200 && ctx.body && typeof ctx.body === "object") {
        (ctx.body as Record<string, unknown>).registration_endpoint = new URL(REGISTRATION_PATH, issuer).href;
      }
      return;
    }
    if (ctx.path !== REGISTRATION_PATH) return next();
    ctx.set("cache-control", "no-store");
    try {
      if (ctx.method !== "POST") throw new RegistrationError("invalid_request", "register with POST", 405);
      if (!ctx.is("application/json")) throw new RegistrationError("invalid_request", "the registration request must be JSON (RFC 7591 §3.1)");
      const read = await readBoundedBody(ctx.req, MAX_BODY);
      if ("tooLarge" in read) throw new RegistrationError("invalid_request", "request entity too large", 413);
      let body: unknown;
      try {
        body = JSON.parse(read.body.toString("utf8"));
      } catch {
        throw new RegistrationError("invalid_request", "the body is not JSON");
      }
      ctx.body = await registerDynamicClient(db, kek, settings, body, ctx.ip || null);
      ctx.status = 201;
    } catch (e) {
      if (e instanceof RegistrationError) {
        ctx.status = e.status;
        ctx.body = { error: e.code, error_description: e.message };
      } else if (e instanceof CertbridgeError && e.status < 500) {
        ctx.status = 400;
        ctx.body = { error: "invalid_client_metadata", error_description: e.message };
      } else throw e;
    }
  };
}
