/**
 * Mapping errors to HTTP for the route handlers, in one place. Next bundles
 * its own copy of lib/, so errors are recognised by shape, not instanceof.
 */
import { errorPage } from "./oidc/pages";

export interface ErrorShape {
  code: string;
  status: number;
  message: string;
}

export function errorShape(e: unknown): ErrorShape {
  const x = e as Partial<ErrorShape> & { name?: string };
  if (x && x.name === "CertbridgeError" && typeof x.code === "string" && typeof x.status === "number") {
    return { code: x.code, status: x.status, message: x.code === "server_error" ? "internal error" : String(x.message) };
  }
  console.error("certbridge: unexpected error:", e);
  return { code: "server_error", status: 500, message: "internal error" };
}

/** OAuth-style JSON error (RFC 6749 §5.2). */
export function jsonError(e: unknown): Response {
  const s = errorShape(e);
  return Response.json({ error: s.code, error_description: s.message }, { status: s.status, headers: { "cache-control": "no-store" } });
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
export const badRequest = (message: string): ErrorShape & { name: string } => ({ name: "CertbridgeError", code: "invalid_request", status: 400, message });

export const notFoundError = (message: string): ErrorShape & { name: string } => ({ name: "CertbridgeError", code: "not_found", status: 404, message });

export const clientIp = (request: Request): string | null => request.headers.get("x-certbridge-client-ip") || null;

/** An HTML error page for browser flows: a clear message, never a stack trace. */
export function htmlError(e: unknown, title?: string): Response {
  const s = errorShape(e);
  return new Response(errorPage(s.code, s.message, title), { status: s.status, headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" } });
}

/** The POST body of an HTML form as URLSearchParams (repeated fields kept); files are refused. */
export async function formOf(request: Request): Promise<URLSearchParams> {
  let data: FormData;
  try {
    data = await request.formData();
  } catch (e) {
    throw Object.assign(badRequest("expected an HTML form submission (application/x-www-form-urlencoded)"), { cause: e });
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
 * The console's form-post adapter: user errors go back to the form with the
 * message (Post/Redirect/Get), a lapsed session to the sign-in, refusals and
 * server errors to an error page with their status.
 */
export async function consoleForm(
  request: Request,
  back: string,
  act: (req: { cookie: string; origin: string | null; ip: string | null; form: URLSearchParams }) => Promise<Response>,
): Promise<Response> {
  try {
    const form = await formOf(request);
    return await act({ cookie: request.headers.get("cookie") ?? "", origin: request.headers.get("origin"), ip: clientIp(request), form });
  } catch (e) {
    const s = errorShape(e);
    if (s.status === 401) return seeOther(`/login?next=${encodeURIComponent(back)}`);
    if (s.status === 403 || s.status >= 500) return htmlError(e, s.status === 403 ? "Not allowed" : "Something went wrong");
    return seeOther(withError(back, s.message));
  }
}
