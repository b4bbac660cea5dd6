/** The hot path's driver statements on PostgreSQL (test/onPostgres.ts). */
import "./onPostgres.ts";

await import("./directSql.test.ts");
