/**
 * The error edge: the one mapping from CertbridgeError to HTTP, for every transport that speaks
 * HTTP — Next's route handlers (as a Response) and the server entry's own handlers (/getproxy,
 * written to a Node response). APIs get OAuth-style JSON (RFC 6749 §5.2, RFC 6750 §3), people get
 * a page. Anything that is not a CertbridgeError is an opaque 500 whose cause is logged here, once.
 */
import { asCertbridgeError, CertbridgeError, invalidRequest, notFound, RETRY_AFTER_SECONDS, type ErrorCode } from "./errors";
import { errorPage } from "./oidc/pages";
import { portal } from "./runtime";

/** A transport-neutral HTTP answer. */
export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** What a protocol handler needs of an HTTP request. */
export interface HttpRequestParts {
  authorization: string | null;
  /** Query and form parameters, in order (repeats kept, so they can be refused). */
  params: [string, string][];
  ip: string | null;
}

/** Set on an error whose cause its maker has already logged (upstream failures log one JSON line with a reference). */
export const LOGGED = Symbol.for("certbridge.error-logged");

const quoted = (s: string) => s.replace(/["\\]/g, "'");

/** RFC 6750 §3 and RFC 6749 §5.2: the challenge that goes with a 401. */
function challenge(code: ErrorCode, message: string): string | undefined {
  if (code === "invalid_token") return `Bearer error="invalid_token", error_description="${quoted(message)}"`;
  if (code === "insufficient_scope") return `Bearer error="insufficient_scope", scope="proxy"`;
  if (code === "invalid_client") return `Basic realm="certbridge"`;
  return undefined;
}

/** The error as an HTTP answer: `json` for APIs, `html` for pages people read. */
export function errorResult(e: unknown, as: "json" | "html", title?: string): HttpResult {
  const err = asCertbridgeError(e);
  if ((err.code === "server_error" || (err.status >= 500 && err.code !== "temporarily_unavailable")) && !(err as { [LOGGED]?: boolean })[LOGGED]) console.error("certbridge: request failed:", err.cause ?? err);
  const message = err.code === "server_error" ? "internal error" : err.message;
  const headers: Record<string, string> = { "cache-control": "no-store" };
  const www = err.status === 401 || err.code === "insufficient_scope" ? challenge(err.code, message) : undefined;
  if (www) headers["www-authenticate"] = www;
  // RFC 9110 §10.2.3: a 503 says when to come back (the database, the IdP: lib/errors.ts).
  if (err.status === 503) headers["retry-after"] = String(RETRY_AFTER_SECONDS);
  if (as === "json") {
    return { status: err.status, headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify({ error: err.code, error_description: message }) };
  }
  return { status: err.status, headers: { ...headers, "content-type": "text/html; charset=utf-8" }, body: errorPage(err.code, message, title) };
}

export const toResponse = (r: HttpResult): Response => new Response(r.body, { status: r.status, headers: r.headers });

/** OAuth-style JSON error (RFC 6749 §5.2), for API route handlers. */
export const jsonError = (e: unknown): Response => toResponse(errorResult(e, "json"));

/** An HTML error page for browser flows: a clear message, never a stack trace. */
export const htmlError = (e: unknown, title?: string): Response => toResponse(errorResult(e, "html", title));

/** Status and a message safe to show, for pages that render an error inline. */
export function describeError(e: unknown): { status: number; message: string } {
  const err = asCertbridgeError(e);
  return { status: err.status, message: err.code === "server_error" ? "internal error" : err.message };
}

export interface CookieSpec {
  name: string;
  value: string;
  path: string;
  maxAge: number;
  secure: boolean;
}

/** HttpOnly, SameSite=Lax (a top-level return from the IdP must carry it; cross-site POSTs must not). */
const setCookieLine = (c: CookieSpec) => `${c.name}=${c.value}; Path=${c.path}; Max-Age=${c.maxAge}; HttpOnly; SameSite=Lax${c.secure ? "; Secure" : ""}`;

/** A 303 to `location`, optionally setting cookies. */
export function seeOther(location: string, cookies: CookieSpec | readonly CookieSpec[] = []): Response {
  const headers = new Headers({ location, "cache-control": "no-store" });
  for (const c of Array.isArray(cookies) ? cookies : [cookies as CookieSpec]) headers.append("set-cookie", setCookieLine(c));
  return new Response(null, { status: 303, headers });
}

/** A file download (certificates, proxies, audit exports): never cached, never sniffed. */
export function attachment(filename: string, body: string | ReadableStream<Uint8Array>, contentType: string): Response {
  return new Response(body, {
    headers: { "content-type": contentType, "content-disposition": `attachment; filename="${filename.replace(/[^A-Za-z0-9._-]/g, "_")}"`, "cache-control": "no-store" },
  });
}

/** The sealed cookie that carries PKCE verifier, state and nonce across the upstream login. */
export const LOGIN_COOKIE = "certbridge_login";

/** A user error raised in an adapter itself (before any lib/ call). */
export const badRequest = (message: string): CertbridgeError => invalidRequest(message);

export const notFoundError = (message: string): CertbridgeError => notFound(message);

export const clientIp = (request: Request): string | null => request.headers.get("x-certbridge-client-ip") || null;

/** The POST body of an HTML form as URLSearchParams (repeated fields kept); files are refused. */
export async function formOf(request: Request): Promise<URLSearchParams> {
  let data: FormData;
  try {
    data = await request.formData();
  } catch (e) {
    throw invalidRequest("expected an HTML form submission (application/x-www-form-urlencoded)", e);
  }
  const form = new URLSearchParams();
  for (const [k, v] of data) {
    if (typeof v !== "string") throw badRequest(`form field ${k} must be text`);
    form.append(k, v);
  }
  return form;
}

/** Append `error=<message>` to a same-site path, for a form's page to show. */
export function withError(path: string, message: string): string {
  const url = new URL(path, "http://x");
  url.searchParams.set("error", message);
  return `${url.pathname}${url.search}`;
}

/**
 * The console's form-post adapter: user errors go back to the form (Post/Redirect/Get) with the
 * message, the field it concerns (`field` when the message names none) and what was typed, in a
 * one-shot cookie rather than the URL; a lapsed session goes to the sign-in, refusals and server
 * errors to an error page with their status.
 */
export async function consoleForm(
  request: Request,
  back: string,
  act: (req: { cookie: string; origin: string | null; ip: string | null; form: URLSearchParams }) => Promise<Response>,
  opts: { field?: string } = {},
): Promise<Response> {
  let form: URLSearchParams | undefined;
  try {
    form = await formOf(request);
    return await act({ cookie: request.headers.get("cookie") ?? "", origin: request.headers.get("origin"), ip: clientIp(request), form });
  } catch (e) {
    const err = asCertbridgeError(e);
    if (err.status === 401) return seeOther(`/login?next=${encodeURIComponent(back)}`);
    if (err.status === 403 || err.status >= 500) return htmlError(err, err.status === 403 ? "Not allowed" : "Something went wrong");
    if (!form) return seeOther(withError(back, err.message));
    const url = new URL(back, "http://x");
    return seeOther(`${url.pathname}${url.search}${url.hash}`, portal().console.forms.remember(url.pathname, err.message, form, opts.field));
  }
}
