/** The portal over HTTP and the consoles on PostgreSQL (test/onPostgres.ts). */
import "./onPostgres.ts";

await import("./portal.test.ts");
await import("./consoles.test.ts");
