#!/usr/bin/env node
/**
 * Is the running Node.js one that package.json's `engines.node` admits? npm only warns about engines,
 * and on another version the failures come late and obscure (oidc-provider's "Unsupported runtime",
 * native addons built for another ABI), so scripts/setup.sh and scripts/test-all.sh ask this first.
 *
 *   node scripts/check-node.mjs      exit 0, or exit 1 with one line naming both versions
 *
 * Plain JavaScript without dependencies: it runs before `npm ci`, on whatever Node.js the machine has.
 * It understands the forms engines uses here: ranges joined by `||`, each `^X.Y.Z` or `>=X.Y.Z`
 * (anything else is refused, so a new form cannot pass unnoticed).
 */
import fs from "node:fs";
import { fileURLToPath } from "node:url";

/** [major, minor, patch] of "v22.13.0" / "22.13.0" / "22.13" / "22". */
function parse(version) {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(version.trim());
  if (!m) throw new Error(`not a version: ${version}`);
  return [Number(m[1]), Number(m[2] || 0), Number(m[3] || 0)];
}

function compare(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/** Does `version` satisfy `range` ("^22.13.0 || >=24")? */
export function satisfies(version, range) {
  const v = parse(version);
  return range.split("||").some((part) => {
    const m = /^\s*(\^|>=)\s*(\S+)\s*$/.exec(part);
    if (!m) throw new Error(`engines range not understood: ${part.trim()} (use ^X.Y.Z or >=X.Y.Z joined by ||)`);
    const low = parse(m[2]);
    if (compare(v, low) < 0) return false;
    return m[1] === ">=" || v[0] === low[0];
  });
}

/** engines.node of the project's package.json. */
export function enginesNode() {
  const pkg = JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  return pkg.engines.node;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const range = enginesNode();
  if (!satisfies(process.versions.node, range)) {
    console.error(`Node.js ${process.version} (${process.execPath}) is not what package.json engines asks for (${range}): run scripts/setup.sh, which installs Node.js 22 LTS`);
    process.exit(1);
  }
}
