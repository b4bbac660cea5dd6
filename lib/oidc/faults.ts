/**
 * oidc-provider's side of "the database cannot serve now" (lib/db/faults.ts): a 503
 * `temporarily_unavailable` with Retry-After instead of its opaque 500 `server_error`.
 *
 * - The storage adapter's failures become oidc-provider's own TemporarilyUnavailable error, which
 *   it renders in place (JSON at the token endpoint, its error page for people) and which the
 *   authorization endpoint returns to the client's redirect URI as RFC 6749 §4.1.2.1's
 *   `error=temporarily_unavailable`.
 * - Anything else that reaches oidc-provider's error handler from the database (account lookup,
 *   event hooks) is rewritten from 500 to 503 after the fact, through its `server_error` event.
 */
import { errors, type Adapter, type AdapterConstructor, type KoaContextWithOIDC } from "oidc-provider";
import type Provider from "oidc-provider";
import { isDatabaseUnavailable } from "../db";
import { DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS } from "../errors";
import { errorPage } from "./pages";

function unavailable(cause: unknown): Error {
  const err = new errors.TemporarilyUnavailable(DATABASE_UNAVAILABLE) as InstanceType<typeof errors.TemporarilyUnavailable> & { expose: boolean; cause?: unknown };
  // oidc-provider shows only errors below 500 to the client; this one is meant for it (RFC 6749 §5.2, §4.1.2.1).
  err.status = 503;
  err.statusCode = 503;
  err.expose = true;
  err.cause = cause;
  return err;
}

const rethrow = (e: unknown): never => {
  throw isDatabaseUnavailable(e) ? unavailable(e) : e;
};

/** The adapter class with every method's database failure turned into TemporarilyUnavailable. */
export function adapterWithFaults(Base: AdapterConstructor): AdapterConstructor {
  return class implements Adapter {
    private readonly inner: Adapter;
    constructor(model: string) {
      this.inner = new Base(model);
    }
    upsert(...a: Parameters<Adapter["upsert"]>) {
      return this.inner.upsert(...a).catch(rethrow);
    }
    find(id: string) {
      return this.inner.find(id).catch(rethrow);
    }
    findByUid(uid: string) {
      return this.inner.findByUid(uid).catch(rethrow);
    }
    findByUserCode(userCode: string) {
      return this.inner.findByUserCode(userCode).catch(rethrow);
    }
    consume(id: string) {
      return this.inner.consume(id).catch(rethrow);
    }
    destroy(id: string) {
      return this.inner.destroy(id).catch(rethrow);
    }
    revokeByGrantId(grantId: string) {
      return this.inner.revokeByGrantId(grantId).catch(rethrow);
    }
  };
}

const DB_FAULT = Symbol("certbridge.db-fault");

/** Register first: every 503 gets Retry-After, and a database failure that became a 500 becomes a 503. */
export function mapDatabaseFaults(provider: Provider): void {
  provider.on("server_error", (ctx: KoaContextWithOIDC, err: unknown) => {
    if (isDatabaseUnavailable(err)) (ctx.state as Record<symbol, boolean>)[DB_FAULT] = true;
  });
  provider.use(async (ctx, next) => {
    await next();
    if ((ctx.state as Record<symbol, boolean>)[DB_FAULT] && ctx.status === 500) {
      const html = ctx.response.is("html");
      ctx.status = 503;
      ctx.body = html ? errorPage("temporarily_unavailable", DATABASE_UNAVAILABLE) : { error: "temporarily_unavailable", error_description: DATABASE_UNAVAILABLE };
    }
    if (ctx.status === 503) {
      ctx.set("Retry-After", String(RETRY_AFTER_SECONDS));
      ctx.set("Cache-Control", "no-store");
    }
  });
}
