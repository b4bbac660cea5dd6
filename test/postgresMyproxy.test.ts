/** The MyProxy listener on PostgreSQL (test/onPostgres.ts). */
import "./onPostgres.ts";

await import("./myproxy.test.ts");
