/** The issuance pipeline, the operator CLI, the admin search and the data layer on PostgreSQL (test/onPostgres.ts). */
import "./onPostgres.ts";

await import("./issuance.test.ts");
await import("./cli.test.ts");
await import("./adminSearch.test.ts");
await import("./dataAccess.test.ts");
