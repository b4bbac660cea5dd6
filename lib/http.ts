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

/** A 303 to `location`, optionally setting one cookie. */
export function seeOther(location: string, cookie?: { name: string; value: string; path: string; maxAge: number; secure: boolean }): Response {
  const headers = new Headers({ location, "cache-control": "no-store" });
  if (cookie) {
    headers.append(
      "set-cookie",
      `${cookie.name}=${cookie.value}; Path=${cookie.path}; Max-Age=${cookie.maxAge}; HttpOnly; SameSite=Lax${cookie.secure ? "; Secure" : ""}`,
    );
  }
  return new Response(null, { status: 303, headers });
}

/** The sealed cookie that carries PKCE verifier, state and nonce across the upstream login. */
export const LOGIN_COOKIE = "certbridge_login";

/** A user error raised in an adapter itself (before any lib/ call). */
export const badRequest = (message: string): ErrorShape & { name: string } => ({ name: "CertbridgeError", code: "invalid_request", status: 400, message });

export const notFoundError = (message: string): ErrorShape & { name: string } => ({ name: "CertbridgeError", code: "not_found", status: 404, message });

export const clientIp = (request: Request) => request.headers.get("x-certbridge-client-ip") || null;

/** An HTML error page for browser flows: a clear message, never a stack trace. */
export function htmlError(e: unknown): Response {
  const s = errorShape(e);
  return new Response(errorPage(s.code, s.message), { status: s.status, headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" } });
}
