/** The MasterPortal/OA4MP compatibility profile and /getproxy on PostgreSQL (test/onPostgres.ts). */
import "./onPostgres.ts";

await import("./masterportalCompat.test.ts");
