/** MyProxy renewal on PostgreSQL (test/onPostgres.ts). */
import "./onPostgres.ts";

await import("./myproxyRenewal.test.ts");
