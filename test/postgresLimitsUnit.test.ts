/** The limiter and limit settings on PostgreSQL (test/onPostgres.ts): counters shared between connections. */
import "./onPostgres.ts";

await import("./limits.test.ts");
