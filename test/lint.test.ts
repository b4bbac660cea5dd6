/**
 * The boundary rules of eslint.config.mjs fire on planted violations and stay
 * quiet on clean code: snippets linted in memory at virtual paths of this
 * project (nothing is written to disk).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const eslint = new ESLint({ cwd: ROOT });

/** The rule ids reported for `code` as if it were the file `rel`. */
async function rulesFor(rel: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, rel) });
  assert.ok(result, `no lint result for ${rel}`);
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], `${rel} did not parse`);
  return result.messages.map((m) => m.ruleId ?? "?").sort();
}

describe("boundary lint", () => {
  test("app/ importing lib/db fails, by any path that resolves there; through lib/ it passes", async () => {
    assert.deepEqual(await rulesFor("app/admin/x/page.tsx", `import { findIdentity } from "../../../lib/db";\nexport const f = findIdentity;\n`), ["certbridge/no-db-in-app"]);
    assert.deepEqual(await rulesFor("app/route.ts", `export * from "../lib/db/audit";\n`), ["certbridge/no-db-in-app"]);
    assert.deepEqual(await rulesFor("app/api/health/route.ts", `import type { Db } from "../../../lib/db/index.ts";\nexport type D = Db;\n`), ["certbridge/no-db-in-app"]);
    assert.deepEqual(await rulesFor("app/page.tsx", `export const m = () => import("../lib/db/certificates");\n`), ["certbridge/no-db-in-app"]);
    // a name that merely starts like lib/db, and lib/ itself, are fine
    assert.deepEqual(await rulesFor("app/page.tsx", `import { portal } from "../lib/runtime";\nimport { x } from "../lib/dbx";\nexport const p = [portal, x];\n`), []);
  });

  test("lib/pki importing lib/voms fails; lib/voms importing lib/pki passes", async () => {
    assert.deepEqual(await rulesFor("lib/pki/newThing.ts", `import { vomsExtension } from "../voms/proxyExtension";\nexport const v = vomsExtension;\n`), ["certbridge/no-voms-in-pki"]);
    assert.deepEqual(await rulesFor("lib/pki/sub/deeper.ts", `import { x } from "../../voms";\nexport const v = x;\n`), ["certbridge/no-voms-in-pki"]);
    assert.deepEqual(await rulesFor("lib/voms/thing.ts", `import { toPem } from "../pki/der";\nexport const t = toPem;\n`), []);
  });

  test("the generated Prisma client outside lib/db fails; inside lib/db it passes", async () => {
    assert.deepEqual(await rulesFor("lib/portalThing.ts", `import { PrismaClient } from "./db/generated/sqlite/client";\nexport const C = PrismaClient;\n`), ["certbridge/no-prisma-client-outside-db"]);
    assert.deepEqual(await rulesFor("cli/thing.ts", `import { PrismaClient } from "@prisma/client";\nexport const C = PrismaClient;\n`), ["certbridge/no-prisma-client-outside-db"]);
    assert.deepEqual(await rulesFor("test/thing.test.ts", `import type { Prisma } from "@prisma/client/runtime/library";\nexport type P = Prisma;\n`), ["certbridge/no-prisma-client-outside-db"]);
    assert.deepEqual(await rulesFor("lib/db/newAggregate.ts", `import { PrismaClient } from "./generated/pg/client";\nexport const C = PrismaClient;\n`), []);
  });

  test("Prisma calls outside lib/db fail in lib/, app/, cli/, server.ts; tests (harnesses) may make them", async () => {
    const code = `export async function f(db: any) {\n  await db.$transaction([db.identity.count()]);\n  return db.oidcPayload.deleteMany({ where: {} });\n}\n`;
    assert.deepEqual(await rulesFor("lib/oidc/thing.ts", code), ["certbridge/no-prisma-calls", "certbridge/no-prisma-calls", "certbridge/no-prisma-calls"]);
    assert.deepEqual(await rulesFor("server.ts", `export const f = (db: any) => db.$queryRaw\`SELECT 1\`;\n`), ["certbridge/no-prisma-calls"]);
    assert.deepEqual(await rulesFor("lib/db/thing.ts", code), []);
    assert.deepEqual(await rulesFor("test/thing.test.ts", code), []);
  });

  test("process.env outside lib/config.ts fails in lib/, app/, server.ts; config modules and harnesses may read it", async () => {
    const read = `export const port = process.env.CERTBRIDGE_PORT;\n`;
    for (const rel of ["lib/portalThing.ts", "app/api/x/route.ts", "server.ts", "cli/main2.ts", "packages/proxy-cli/src/proxyInit2.ts"]) {
      assert.deepEqual(await rulesFor(rel, read), ["no-restricted-properties"], rel);
    }
    assert.deepEqual(await rulesFor("lib/thing.ts", `const { env } = process;\nexport const e = env;\n`), ["no-restricted-properties"]);
    assert.deepEqual(await rulesFor("lib/thing.ts", `import { env } from "node:process";\nexport const e = env;\n`), ["no-restricted-imports"]);
    for (const rel of ["lib/config.ts", "packages/proxy-cli/src/env.ts", "test/x.test.ts", "bench/x.ts", "scripts/x.ts", "e2e/x.spec.ts", "examples/gateway/x.ts"]) {
      assert.deepEqual(await rulesFor(rel, read), [], rel);
    }
  });

  test("clean code passes, and no style rule is on", async () => {
    const sloppy = `import { loadConfig } from "./config"\nvar  unused = 1;;\nexport function  f( ){ return loadConfig }\n`;
    assert.deepEqual(await rulesFor("lib/clean.ts", sloppy), []);
    assert.deepEqual(await rulesFor("app/page.tsx", `import { portal } from "../lib/runtime";\nexport default function Page() { return <p>{String(portal)}</p>; }\n`), []);
  });
});
