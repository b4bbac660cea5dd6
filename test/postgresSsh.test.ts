/** SSH retrieval on PostgreSQL (test/onPostgres.ts). */
import "./onPostgres.ts";

await import("./ssh.test.ts");
