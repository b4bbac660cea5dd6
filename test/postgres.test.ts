/**
 * The database-backed suites again, on PostgreSQL (the production and
 * multi-instance engine). Each test file runs in its own process under
 * `node --test`, so setting the variable here affects only these suites.
 * CERTBRIDGE_TEST_POSTGRES names the server; npm test sets it (scripts/test-postgres.sh starts a throwaway cluster when none answers).
 */
process.env.CERTBRIDGE_TEST_DATABASE = process.env.CERTBRIDGE_TEST_POSTGRES ?? "postgresql://postgres@127.0.0.1:5432/postgres";

await import("./issuance.test.ts");
await import("./cli.test.ts");
await import("./portal.test.ts");
await import("./adminSearch.test.ts");
await import("./consoles.test.ts");
await import("./ssh.test.ts");
await import("./dataAccess.test.ts");

export {};
