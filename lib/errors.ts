/**
 * The one error type of Certbridge. It carries what each transport needs:
 * an OAuth-style code (RFC 6749 §5.2 / RFC 6750 §3.1 names where one fits),
 * an HTTP status, a message that is safe to show to the caller, and the
 * internal cause for logs. Transports map it in exactly one place each
 * (the CLI in cli/main.ts, HTTP routes in their adapter).
 */
import { isDatabaseUnavailable } from "./db/faults";

export type ErrorCode =
  | "invalid_request"
  | "invalid_csr"
  | "invalid_token"
  | "invalid_client"
  | "invalid_grant"
  | "insufficient_scope"
  | "access_denied"
  | "not_found"
  | "conflict"
  | "invalid_config"
  | "temporarily_unavailable"
  | "server_error";

const statusOf: Record<ErrorCode, number> = {
  invalid_request: 400,
  invalid_csr: 400,
  invalid_token: 401,
  invalid_client: 401,
  invalid_grant: 400,
  insufficient_scope: 403,
  access_denied: 403,
  not_found: 404,
  conflict: 409,
  invalid_config: 500,
  temporarily_unavailable: 503,
  server_error: 500,
};

/**
 * Next.js bundles its own copy of lib/ for pages and route handlers, so `instanceof` fails between
 * an error made by the server entry's copy and the bundle's class. A registry-wide symbol brands
 * every CertbridgeError, whichever copy made it.
 */
const BRAND = Symbol.for("certbridge.error");

export class CertbridgeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CertbridgeError";
    this.code = code;
    this.status = options?.status ?? statusOf[code];
  }

  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === "object" && x !== null && (x as { [BRAND]?: boolean })[BRAND] === true;
  }

  get [BRAND](): boolean {
    return true;
  }

  /** OAuth-style body (RFC 6749 §5.2): never includes the internal cause. */
  toJSON(): { error: ErrorCode; error_description: string } {
    return { error: this.code, error_description: this.message };
  }
}

export const invalidRequest = (message: string, cause?: unknown) =>
  new CertbridgeError("invalid_request", message, { cause });
export const invalidCsr = (message: string, cause?: unknown) =>
  new CertbridgeError("invalid_csr", message, { cause });
export const accessDenied = (message: string, cause?: unknown) =>
  new CertbridgeError("access_denied", message, { cause });
export const notFound = (message: string) => new CertbridgeError("not_found", message);
/** RFC 6749 §5.2: client authentication failed (unknown client, wrong secret, wrong method). */
export const invalidClient = (message: string) => new CertbridgeError("invalid_client", message);
export const invalidConfig = (message: string, cause?: unknown) =>
  new CertbridgeError("invalid_config", message, { cause });

/** What a client is told while the database cannot serve (lib/db/faults.ts), with `Retry-After: RETRY_AFTER_SECONDS`. */
export const DATABASE_UNAVAILABLE = "the service is temporarily unavailable (its database cannot be reached); try again shortly";
export const RETRY_AFTER_SECONDS = 5;

/** Said once per 10 s at most: an outage fails every request, and each need not log a stack. */
let lastFaultLog = 0;
function logDatabaseFault(err: unknown) {
  const now = Date.now();
  if (now - lastFaultLog < 10_000) return;
  lastFaultLog = now;
  const message = err instanceof Error ? err.message.trim().split("\n").pop() : String(err);
  console.error(`certbridge: database unavailable (requests get 503 until it is back): ${message}`);
}

/**
 * Anything that is not already a CertbridgeError becomes an opaque server error, except a
 * database that cannot serve now: that is a 503 `temporarily_unavailable` (RFC 6749 §4.1.2.1's
 * name), which every transport maps (with Retry-After over HTTP).
 */
export function asCertbridgeError(err: unknown): CertbridgeError {
  if (err instanceof CertbridgeError) return err;
  if (isDatabaseUnavailable(err)) {
    logDatabaseFault(err);
    return new CertbridgeError("temporarily_unavailable", DATABASE_UNAVAILABLE, { cause: err });
  }
  return new CertbridgeError("server_error", "internal error", { cause: err });
}

/**
 * The message for an operator (the CLI, the server's start-up): what a client is told, and for a
 * database that cannot serve also why (the driver's words), which clients are never told.
 */
export function operatorMessage(e: unknown): string {
  const err = asCertbridgeError(e);
  if (err.code === "server_error") return `internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
  if (err.code === "temporarily_unavailable" && err.cause instanceof Error) return `${err.message}: ${err.cause.message.trim().split("\n").pop()}`;
  return err.message;
}
