/** The persistent server-key pool on PostgreSQL (test/onPostgres.ts): takes from several connections at once, SKIP LOCKED. */
import "./onPostgres.ts";

await import("./keyPool.test.ts");
