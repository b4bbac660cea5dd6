// Bundles the two commands into dist/ for `npm pack`: the sources in src/ and the few portal
// modules they share (lib/duration, lib/pki CSR and proxy-file code, lib/voms AC reader) become
// two plain ES modules; the npm dependencies in package.json stay external. esbuild comes from
// the repository's own devDependencies, so pack from a checkout after `npm ci`.
import { build } from "esbuild";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(fs.readFileSync(path.join(here, "package.json"), "utf8"));
fs.rmSync(path.join(here, "dist"), { recursive: true, force: true });
await build({
  absWorkingDir: here,
  entryPoints: { "certbridge-proxy-init": "bin/certbridge-proxy-init.ts", "certbridge-proxy-info": "bin/certbridge-proxy-info.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20.19",
  external: Object.keys(pkg.dependencies),
  legalComments: "none",
  logLevel: "warning",
});
for (const f of fs.readdirSync(path.join(here, "dist"))) fs.chmodSync(path.join(here, "dist", f), 0o755);
