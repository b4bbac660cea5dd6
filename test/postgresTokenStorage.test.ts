/** Tokens at rest (test/tokenStorage.test.ts) on PostgreSQL: the dump is pg_dump's (test/onPostgres.ts). */
import "./onPostgres.ts";

await import("./tokenStorage.test.ts");
