/** The refresh-token grace period at the adapter, on PostgreSQL (test/onPostgres.ts). */
import "./onPostgres.ts";

await import("./refreshGrace.test.ts");
