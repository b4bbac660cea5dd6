/**
 * Public clients that send `Authorization: Basic base64(client_id:)`, an empty secret. oidc-agent
 * does this for every client it has no secret for (certbridge-cli, a public gateway client, one it
 * registered with `token_endpoint_auth_method: none`); oidc-provider takes any Basic header as
 * client_secret_basic and refuses it ("client_secret must be provided in the Authorization
 * header"). RFC 6749 §2.3.1 knows no empty secret, so such a header says "this client id, no
 * secret": this step moves the client id into the form as `client_id` (RFC 6749 §3.2.1, how a
 * public client identifies itself) and drops the header, before oidc-provider reads the request.
 * A confidential client gains nothing: with no secret it is refused as before (its method is
 * client_secret_basic, never `none`).
 */
import type { IncomingMessage } from "node:http";
import querystring from "node:querystring";
import { parseBasicCredentials } from "../basicAuth";
import { FORM_BODY_LIMIT, readBoundedBody } from "../requestBody";

/** The back-channel endpoints that authenticate clients (provider.ts routes). */
export const CLIENT_AUTH_PATHS = ["/oidc/token", "/oidc/device/auth", "/oidc/token/revocation", "/oidc/token/introspection"] as const;

/** The client id of a Basic header with an empty secret (lib/basicAuth.ts), or null for any other header. */
export function emptySecretClientId(authorization: string | undefined): string | null {
  const basic = parseBasicCredentials(authorization);
  // a malformed header is oidc-provider's to answer
  return basic && basic !== "malformed" && basic.clientId !== "" && basic.clientSecret === "" ? basic.clientId : null;
}

interface Ctx {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  req: IncomingMessage & { body?: unknown };
  request: { body?: unknown };
  status: number;
  body: unknown;
  is: (t: string) => string | false | null;
}

export function publicClientBasicAuth() {
  return async (ctx: Ctx, next: () => Promise<unknown>) => {
    if (ctx.method !== "POST" || !(CLIENT_AUTH_PATHS as readonly string[]).includes(ctx.path)) return next();
    const header = ctx.headers.authorization;
    const clientId = emptySecretClientId(typeof header === "string" ? header : undefined);
    if (clientId === null || !ctx.is("application/x-www-form-urlencoded")) return next();
    // An earlier step (wlcgTokens.ts) may have read the body already.
    let body: string;
    if (typeof ctx.req.body === "string") body = ctx.req.body;
    else {
      const read = await readBoundedBody(ctx.req, FORM_BODY_LIMIT);
      if ("tooLarge" in read) {
        ctx.status = 413;
        ctx.body = { error: "invalid_request", error_description: "request entity too large" };
        return;
      }
      body = read.body.toString("utf8");
    }
    const form = querystring.parse(body);
    if (form.client_id !== undefined && form.client_id !== clientId) {
      ctx.status = 400;
      ctx.body = { error: "invalid_request", error_description: "client_id mismatch" };
      return;
    }
    if (form.client_secret !== undefined) {
      ctx.status = 400;
      ctx.body = { error: "invalid_request", error_description: "client authentication must only be provided using one mechanism" };
      return;
    }
    form.client_id = clientId;
    delete ctx.req.headers.authorization;
    delete ctx.headers.authorization;
    // oidc-provider takes `req.body || request.body` when the stream was read
    ctx.req.body = ctx.request.body = querystring.stringify(form);
    return next();
  };
}
