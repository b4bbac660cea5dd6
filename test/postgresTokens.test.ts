/** Tokens for compute elements on PostgreSQL (test/onPostgres.ts). */
import "./onPostgres.ts";

await import("./tokens.test.ts");
