/**
 * The supported Node.js (issue 17): package.json engines admits 22 LTS from 22.13 on and later LTS lines, and
 * refuses 20 (oidc-provider prints "Unsupported runtime" there) and non-LTS 23; scripts/check-node.mjs, which
 * setup.sh and npm test ask first, reads exactly that range; the Node.js setup.sh installs is one it admits;
 * scripts/node-headers.sh finds the running Node.js's own headers for native addons; and this very process
 * is a runtime oidc-provider supports.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { enginesNode, satisfies } from "../scripts/check-node.mjs";
import { ROOT } from "./helpers";

const pkg = (rel: string) => JSON.parse(fs.readFileSync(path.join(ROOT, rel), "utf8")) as { engines: { node: string }; devDependencies?: Record<string, string> };

describe("engines range (table)", () => {
  const engines = enginesNode();

  test("is the one package.json declares", () => {
    assert.equal(engines, pkg("package.json").engines.node);
  });

  test("admits 22 LTS from 22.13 and 24+, refuses 20, early 22 and 23", () => {
    const table: [string, boolean][] = [
      ["20.19.0", false], // what Debian/NodeSource ship: oidc-provider's "Unsupported runtime"
      ["20.20.2", false],
      ["22.11.0", false], // first 22 LTS, but pkijs wants 22.12+ and ESLint 22.13+
      ["22.12.0", false],
      ["22.13.0", true],
      ["22.23.3", true],
      ["23.11.0", false], // not an LTS line
      ["24.0.0", true],
      ["26.1.0", true],
      ["v22.13.1", true],
    ];
    for (const [version, ok] of table) assert.equal(satisfies(version, engines), ok, `${version} against ${engines}`);
  });

  test("^ stays within its major, >= does not; unknown range forms are refused rather than passed", () => {
    assert.equal(satisfies("20.19.5", "^20.19.0 || >=22.12.0"), true);
    assert.equal(satisfies("21.0.0", "^20.19.0 || >=22.12.0"), false);
    assert.equal(satisfies("22.12.0", "^20.19.0 || >=22.12.0"), true);
    assert.throws(() => satisfies("22.13.0", "~22.13.0"), /engines range not understood: ~22\.13\.0/);
    assert.throws(() => satisfies("22.13.0", "22.x"), /engines range not understood/);
  });

  test("the researcher's CLI package stays as permissive as its dependencies (pkijs, asn1js: ^20.19.0 || >=22.12.0)", () => {
    const cli = pkg("packages/proxy-cli/package.json").engines.node;
    for (const dep of ["pkijs", "asn1js"]) {
      const depRange = pkg(`node_modules/${dep}/package.json`).engines.node;
      for (const version of ["20.19.0", "20.20.2", "21.7.0", "22.12.0", "22.23.3", "24.0.0"]) {
        if (satisfies(version, cli)) assert.ok(satisfies(version, depRange), `${version}: CLI admits it, ${dep} (${depRange}) does not`);
      }
    }
    assert.equal(satisfies("20.19.0", cli), true);
  });

  test("@types/node follows the oldest supported major", () => {
    assert.match(pkg("package.json").devDependencies?.["@types/node"] ?? "", /^22\./);
  });
});

describe("setup.sh and npm test", () => {
  test("the Node.js setup.sh installs is one engines admits, and setup.sh and npm test ask check-node first", () => {
    const setup = fs.readFileSync(path.join(ROOT, "scripts/setup.sh"), "utf8");
    const pinned = /^node_version=(\d+\.\d+\.\d+)$/m.exec(setup)?.[1];
    assert.ok(pinned, "setup.sh pins node_version");
    assert.equal(satisfies(pinned, enginesNode()), true, `setup.sh installs ${pinned}`);
    assert.match(setup, /node scripts\/check-node\.mjs/);
    assert.doesNotMatch(setup, /Unsupported runtime' at start/);
    assert.match(fs.readFileSync(path.join(ROOT, "scripts/test-all.sh"), "utf8"), /^node scripts\/check-node\.mjs$/m);
  });

  test("check-node.mjs passes this Node.js and refuses an engines range it does not meet", () => {
    const ok = spawnSync(process.execPath, [path.join(ROOT, "scripts/check-node.mjs")], { encoding: "utf8" });
    assert.equal(ok.status, 0, ok.stderr);
    // The same script from a copy whose package.json asks for a future major: exit 1 and one line naming both.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certbridge-check-node-"));
    try {
      fs.mkdirSync(path.join(dir, "scripts"));
      fs.copyFileSync(path.join(ROOT, "scripts/check-node.mjs"), path.join(dir, "scripts/check-node.mjs"));
      fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ engines: { node: ">=99.0.0" } }));
      const bad = spawnSync(process.execPath, [path.join(dir, "scripts/check-node.mjs")], { encoding: "utf8" });
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, new RegExp(`Node\\.js ${process.version.replace(/\./g, "\\.")} .* \\(>=99\\.0\\.0\\): run scripts/setup\\.sh`));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("node-headers.sh names the running Node.js's own headers (what native addons compile against), of this version", () => {
    const out = execFileSync("bash", ["-c", '. scripts/node-headers.sh && dir=$(running_node_headers) && echo "$dir" && node_headers_version "$dir"'], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ""}` },
    }).trim().split("\n");
    assert.equal(out[0], path.resolve(fs.realpathSync(process.execPath), "../.."));
    assert.equal(out[1], process.versions.node);
    assert.ok(fs.existsSync(path.join(out[0] ?? "", "include/node/node_api.h")));
  });
});

test("this runtime is one oidc-provider supports: an LTS release from 22 (Jod) on, no 'Unsupported runtime' warning", () => {
  assert.ok(satisfies(process.versions.node, enginesNode()), `running ${process.version}`);
  const lts = process.release.lts;
  assert.ok(lts && lts.charCodeAt(0) >= "Jod".charCodeAt(0), `process.release.lts is ${String(lts)}`);
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", "await import('oidc-provider')"], { cwd: ROOT, encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  assert.doesNotMatch(run.stdout + run.stderr, /Unsupported runtime/);
});
