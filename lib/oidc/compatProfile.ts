/**
 * Per-client compatibility profiles. A profile is set by the operator on one
 * confidential client (CLI, admin console, clients file) and relaxes, for that
 * client only, what older gateways cannot do. The one profile, "masterportal",
 * is for MasterPortal / OA4MP 4.x gateways and DIRAC's MasterPortal client:
 *
 * - PKCE is optional (the `pkce.required` callback in provider.ts);
 * - scope separators are lenient: runs of `+`/spaces, leading or trailing,
 *   are collapsed to the single spaces of RFC 6749 §3.3;
 * - the token endpoint accepts GET, and parameters in the query string
 *   (merged into the form body), also at the OA4MP path `/token`;
 *   a `client_secret` parameter is moved to the Basic header (the client's
 *   registered method, RFC 6749 §2.3.1);
 * - the revocation endpoint accepts its parameters in the query (`?token=`);
 * - ID tokens always carry `auth_time` (client metadata `require_auth_time`).
 *
 * Everything else stays: the exact registered redirect URIs, the client
 * secret, single-use codes bound to that client and redirect URI, consent.
 * A request is rewritten only after its client_id (Basic header or
 * parameter) has been found to name an active client with the profile; other
 * clients' requests reach oidc-provider byte for byte as they came.
 *
 * This module is free of oidc-provider at run time: the CLI loads it.
 */
import { IncomingMessage, type ServerResponse } from "node:http";
import { z } from "zod";
import { parseBasicCredentials } from "../basicAuth";
import { FORM_BODY_LIMIT, readBoundedBody } from "../requestBody";

export const COMPAT_PROFILES = ["masterportal"] as const;
export type CompatProfile = (typeof COMPAT_PROFILES)[number];
export const compatProfileSchema = z.enum(COMPAT_PROFILES, { error: `compatibility profiles: ${COMPAT_PROFILES.join(", ")}` });

/** The client metadata property (oidc-provider extraClientMetadata) that carries the profile. */
export const COMPAT_PROFILE_PROPERTY = "certbridge_compat_profile";

/** What one profile relaxes (the admin console and `certbridge client list` show it). */
export const COMPAT_PROFILE_SUMMARY: Record<CompatProfile, string> = {
  masterportal: "MasterPortal/OA4MP: PKCE optional, lenient scope separators, GET /token and query parameters at the token and revocation endpoints, auth_time in ID tokens",
};

/** The profile of an oidc-provider client (its metadata), or null. */
export function compatProfileOf(client: unknown): CompatProfile | null {
  const v = (client as Record<string, unknown> | undefined)?.[COMPAT_PROFILE_PROPERTY];
  return typeof v === "string" && (COMPAT_PROFILES as readonly string[]).includes(v) ? (v as CompatProfile) : null;
}

/**
 * OAuth 2.0 Security BCP §2.1.1: PKCE for every client, except a confidential
 * client with the MasterPortal profile (it authenticates at the token endpoint,
 * and its redirect URIs are matched exactly, so a stolen code is useless).
 */
export function pkceRequiredFor(client: unknown): boolean {
  const c = client as { tokenEndpointAuthMethod?: string } | undefined;
  return !(compatProfileOf(client) === "masterportal" && c?.tokenEndpointAuthMethod !== undefined && c.tokenEndpointAuthMethod !== "none");
}

/** RFC 6749 §3.3 scope, from what DIRAC sends (`+openid+profile`, doubled or trailing separators). */
export const normalizeScope = (scope: string): string => scope.split(/[\s+]+/).filter(Boolean).join(" ");

// --- the request pre-processor in front of oidc-provider ------------------------------------------

/** The paths the pre-processor looks at (the OA4MP alias `/token` included). */
const AUTHORIZATION = "/oidc/auth";
const TOKEN = "/oidc/token";
const REVOCATION = "/oidc/token/revocation";
const OA4MP_TOKEN = "/token";

export function isCompatPath(pathname: string): boolean {
  return pathname === AUTHORIZATION || pathname === TOKEN || pathname === REVOCATION || pathname === OA4MP_TOKEN;
}

/** client_id and secret of a Basic header (lib/basicAuth.ts), or null: oidc-provider answers a malformed one. */
function basicCredentials(header: string | undefined): { id: string; secret: string } | null {
  const basic = parseBasicCredentials(header);
  return basic && basic !== "malformed" ? { id: basic.clientId, secret: basic.clientSecret } : null;
}

const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");

/** A request oidc-provider reads as if it had come so: same socket, new method, URL, headers and body. */
function replayedRequest(original: IncomingMessage, method: string, url: string, headers: IncomingMessage["headers"], body: Buffer): IncomingMessage {
  const req = new IncomingMessage(original.socket);
  req.method = method;
  req.url = url;
  req.httpVersion = original.httpVersion;
  req.httpVersionMajor = original.httpVersionMajor;
  req.httpVersionMinor = original.httpVersionMinor;
  const h: IncomingMessage["headers"] = { ...headers };
  if (body.length > 0 || method === "POST") h["content-length"] = String(body.length);
  else delete h["content-length"];
  delete h["transfer-encoding"];
  req.headers = h;
  req.complete = true;
  // The bytes are handed over when oidc-provider reads them (it reads only a stream still readable).
  let handed = false;
  req._read = () => {
    if (handed) return;
    handed = true;
    if (body.length > 0) req.push(body);
    req.push(null);
  };
  return req;
}

function writeOauthError(res: ServerResponse, status: number, error: string, description: string) {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(JSON.stringify({ error, error_description: description }));
}

/**
 * Serve one request on a compat path: find the client, rewrite the request
 * when the client has the MasterPortal profile, and hand it to oidc-provider.
 * `profileOf` answers for active clients only (a suspended or unknown client
 * gets oidc-provider's own refusal of the unchanged request). `notFound`
 * serves `/token` for clients without the profile (the path is theirs only).
 */
export async function serveCompatRequest(
  req: IncomingMessage,
  res: ServerResponse,
  deps: { profileOf: (clientId: string) => Promise<CompatProfile | null>; oidc: (req: IncomingMessage, res: ServerResponse) => unknown; notFound: (req: IncomingMessage, res: ServerResponse) => unknown },
): Promise<void> {
  const url = new URL(req.url ?? "/", "http://localhost");
  const method = req.method ?? "GET";
  const query = [...url.searchParams.entries()];
  const basic = basicCredentials(req.headers.authorization);

  if (url.pathname === AUTHORIZATION) {
    // Only a GET with a scope can need it; everything else goes through untouched.
    const clientId = url.searchParams.get("client_id");
    const scope = url.searchParams.get("scope");
    if (method === "GET" && clientId && scope !== null && normalizeScope(scope) !== scope && (await deps.profileOf(clientId)) === "masterportal") {
      url.searchParams.set("scope", normalizeScope(scope));
      req.url = `${url.pathname}?${url.searchParams.toString()}`;
    }
    return void deps.oidc(req, res);
  }

  // Token and revocation endpoints (and the OA4MP token path).
  const isPost = method === "POST";
  const type = String(req.headers["content-type"] ?? "");
  let body: Buffer = Buffer.alloc(0);
  let bodyParams: [string, string][] = [];
  // The body is read (bounded) to learn the client; for a client without the profile the same
  // bytes are replayed unchanged.
  if (isPost) {
    const read = await readBoundedBody(req, FORM_BODY_LIMIT);
    if ("tooLarge" in read) return writeOauthError(res, 413, "invalid_request", "the request body is too large");
    body = read.body;
    if (type.startsWith("application/x-www-form-urlencoded")) bodyParams = [...new URLSearchParams(body.toString("utf8")).entries()];
  }
  const all = [...bodyParams, ...query];
  const clientIds = new Set(all.filter(([k]) => k === "client_id").map(([, v]) => v));
  if (basic) clientIds.add(basic.id);
  const clientId = clientIds.size === 1 ? [...clientIds][0]! : null;
  const profile = clientId ? await deps.profileOf(clientId) : null;

  if (profile !== "masterportal") {
    if (url.pathname === OA4MP_TOKEN) return void deps.notFound(req, res);
    // As it came: the same method, URL, headers and bytes.
    return void deps.oidc(isPost ? replayedRequest(req, method, req.url ?? url.pathname, req.headers, body) : req, res);
  }

  if (method !== "GET" && method !== "POST") return void deps.oidc(req, res);
  if (isPost && body.length > 0 && !type.startsWith("application/x-www-form-urlencoded")) {
    return writeOauthError(res, 400, "invalid_request", "token and revocation requests are application/x-www-form-urlencoded");
  }
  // Query and body merged; a parameter in both is ambiguous (RFC 6749 §3.1: no repeats).
  const seen = new Map<string, string>();
  for (const [k, v] of all) {
    if (seen.has(k) && seen.get(k) !== v) return writeOauthError(res, 400, "invalid_request", `parameter ${k} was given twice with different values`);
    seen.set(k, v);
  }
  const headers = { ...req.headers, "content-type": "application/x-www-form-urlencoded" };
  // The client's registered method is client_secret_basic: a secret sent as a parameter is moved there.
  const secret = seen.get("client_secret");
  if (secret !== undefined) {
    if (basic) return writeOauthError(res, 400, "invalid_request", "client credentials were given both in the Authorization header and as parameters");
    headers.authorization = `Basic ${Buffer.from(`${formEncode(clientId!)}:${formEncode(secret)}`).toString("base64")}`;
    seen.delete("client_secret");
    seen.delete("client_id");
  }
  if (basic) seen.delete("client_id");
  const scope = seen.get("scope");
  if (scope !== undefined) seen.set("scope", normalizeScope(scope));
  const form = Buffer.from(new URLSearchParams([...seen.entries()]).toString(), "utf8");
  const target = url.pathname === OA4MP_TOKEN ? TOKEN : url.pathname;
  return void deps.oidc(replayedRequest(req, "POST", target, headers, form), res);
}
