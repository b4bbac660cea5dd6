/** The MasterPortal SSH words and /sshkey on PostgreSQL (test/onPostgres.ts). */
import "./onPostgres.ts";

await import("./masterportalSsh.test.ts");
