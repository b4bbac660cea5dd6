/** The MasterPortal/OA4MP compatibility (profile, /getproxy Basic, /sshkey, SSH words) on PostgreSQL (test/onPostgres.ts). */
import "./onPostgres.ts";

await import("./masterportalCompat.test.ts");
await import("./masterportalSsh.test.ts");
