/**
 * scripts/check-paths.ts, which npm test runs first: a tracked file that imports or reads another
 * checkout by absolute path fails the run (table test), and this checkout passes it.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkCheckout, scanText } from "../scripts/check-paths";
import { ROOT } from "./helpers";

const roots = ["/home/dev/certbridge/", "/home/dev/"];
/** Written as \${S} so that this file does not itself contain what the check looks for. */
const S = "/";
const F = "file://";

describe("absolute paths in source files (table)", () => {
  test("imports, reads and the checkout's own path are flagged; system paths, URL paths and DNs are not", () => {
    const flagged: [string, RegExp][] = [
      [`import { startPortalServer } from "${S}work/main/test/portalHarness.ts";`, /imports by absolute path/],
      [`const m = await import("${S}home/other/certbridge/lib/config.ts");`, /imports by absolute path/],
      [`import x from '${F}${S}home/other/x.ts';`, /imports by absolute path/],
      [`const h = require("${S}opt/checkout/lib/h.js");`, /imports by absolute path/],
      [`/// <reference path="${S}home/other/types.d.ts" />`, /imports by absolute path/],
      [`fs.readFileSync("${S}work/main/examples/vos.json", "utf8")`, /reads by absolute path/],
      [`fs.readdirSync("${S}procfs-copy")`, /reads by absolute path/],
      [`fs.existsSync('${S}srv/ci/checkout/.next/BUILD_ID')`, /reads by absolute path/],
      [`const dir = "${S}home/dev/certbridge/data";`, /names the absolute path \/home\/dev\/certbridge\//],
      [`cp ${S}home/dev/shared/notes/x.md .`, /names the absolute path \/home\/dev\//],
    ];
    for (const [line, why] of flagged) {
      const found = scanText("x.ts", line, roots);
      assert.ok(found.some((f) => why.test(f.why)), `${line} → ${JSON.stringify(found)}`);
    }
    const clean = [
      `import fs from "node:fs";`,
      `import { loadConfig } from "../lib/config";`,
      `const chromium = ["/usr/bin/chromium"].find((p) => fs.existsSync(p));`,
      `fs.readFileSync("/etc/os-release", "utf8")`,
      `fs.existsSync("/dev/null")`,
      `fs.readdirSync("/proc").filter((d) => /^\\d+$/.test(d))`,
      `if (url === "/getproxy" || url.startsWith("/getproxy?")) {}`,
      `const subject = "/DC=org/DC=certbridge/CN=Alice";`,
      `fs.readFileSync(path.join(ROOT, "examples/vos.json"))`,
      `DATABASE_URL: "file:/srv/cb.db"`,
    ];
    for (const line of clean) assert.deepEqual(scanText("x.ts", line, roots), [], line);
  });

  test("an absolute path in a tsconfig is flagged", () => {
    const found = scanText("tsconfig.json", `{ "include": ["lib", "/home/other/bench"] }`, roots);
    assert.equal(found.length, 1);
    assert.match(found[0]!.why, /tsconfig names an absolute path \/home\/other\/bench/);
  });

  test("this checkout is clean", () => {
    assert.deepEqual(checkCheckout(ROOT), []);
  });
});
