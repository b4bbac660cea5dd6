// Derive the PostgreSQL schema from prisma/schema.prisma: Prisma allows one
// provider per schema file and no env() in `provider`, so the second schema is
// generated, never edited by hand.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";

const src = readFileSync(new URL("../prisma/schema.prisma", import.meta.url), "utf8");
const out = src
  .replace('provider = "sqlite"', 'provider = "postgresql"')
  .replace('output     = "../lib/db/generated/sqlite"', 'output     = "../../lib/db/generated/pg"');
if (out === src || !out.includes('"postgresql"') || !out.includes("generated/pg")) {
  throw new Error("gen-pg-schema: prisma/schema.prisma no longer has the expected provider/output lines");
}
mkdirSync(new URL("../prisma/pg/", import.meta.url), { recursive: true });
writeFileSync(new URL("../prisma/pg/schema.prisma", import.meta.url), `// GENERATED from prisma/schema.prisma by scripts/gen-pg-schema.mjs: do not edit.\n${out}`);
