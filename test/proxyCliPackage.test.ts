/**
 * The researcher's tools as researchers get them: `npm pack` of packages/proxy-cli, installed
 * with `npm install -g --prefix <empty dir>` (tarballs from the npm cache where it has them,
 * else the registry), then run from outside the repository against a portal (the production
 * server entry): --help, a device login approved through the real pages, and
 * certbridge-proxy-info on the proxy it wrote.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startPortalServer, type PortalServer } from "./portalHarness";
import { approveDeviceLogin, loginPrompt, startCli } from "./deviceHarness";
import { ROOT, run, tempDir } from "./helpers";

const PACKAGE = path.join(ROOT, "packages/proxy-cli");
let portal: PortalServer;
let work: string;
let bin: string;

before(async () => {
  work = tempDir("proxy-cli-pack-");
  const packed = run("npm", ["pack", "--json", "--pack-destination", work], { cwd: PACKAGE });
  assert.equal(packed.status, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  assert.ok(info);
  // what ships: the bundled commands, the package's README and manifest; no sources of the portal
  assert.deepEqual(info.files.map((f) => f.path).sort(), ["README.md", "dist/certbridge-proxy-info.mjs", "dist/certbridge-proxy-init.mjs", "package.json"]);
  const prefix = path.join(work, "prefix");
  const installed = run("npm", ["install", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", path.join(work, info.filename)], { cwd: work });
  assert.equal(installed.status, 0, installed.stderr);
  bin = path.join(prefix, "bin");
  portal = await startPortalServer();
});

after(async () => {
  await portal?.cleanup();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test("the package depends on what the two commands need, not on the portal's stack", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE, "package.json"), "utf8")) as { dependencies: Record<string, string>; bin: Record<string, string> };
  assert.deepEqual(Object.keys(pkg.dependencies).sort(), ["asn1js", "pkijs", "qrcode", "zod"]);
  assert.deepEqual(Object.keys(pkg.bin).sort(), ["certbridge-proxy-info", "certbridge-proxy-init"]);
  const installedDeps = fs.readdirSync(path.join(bin, "..", "lib", "node_modules", "certbridge-proxy-cli", "node_modules"));
  for (const heavy of ["next", "@prisma", "prisma", "react", "oidc-provider", "tsx"]) assert.ok(!installedDeps.includes(heavy), heavy);
});

test("installed certbridge-proxy-init logs in with the device flow; certbridge-proxy-info -all -file reads the proxy", async () => {
  const help = run(path.join(bin, "certbridge-proxy-init"), ["--help"], { cwd: work });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^usage: certbridge-proxy-init/);
  assert.equal(run(path.join(bin, "certbridge-proxy-info"), ["--bogus"], { cwd: work }).status, 2);

  const out = path.join(work, "proxy.pem");
  const cli = startCli(path.join(bin, "certbridge-proxy-init"), ["-valid", "2h", "-out", out, "--portal", portal.url], {}, work);
  const { url } = await loginPrompt(cli);
  await approveDeviceLogin(url, { user: "alice" });
  assert.equal(await cli.exited, 0, cli.stderr());
  assert.match(cli.stdout(), /Your proxy is in .*proxy\.pem, valid until/);
  assert.equal(fs.statSync(out).mode & 0o777, 0o600);

  const info = run(path.join(bin, "certbridge-proxy-info"), ["-all", "-file", out], { cwd: work });
  assert.equal(info.status, 0, info.stderr);
  assert.match(info.stdout, /^subject\s+: \/.*\/CN=\d+$/m);
  assert.match(info.stdout, /^timeleft\s+: 1:5\d:\d\d$/m);
  assert.equal(run(path.join(bin, "certbridge-proxy-info"), ["-exists", "-valid", "1h", "-file", out], { cwd: work }).status, 0);
  assert.equal(run(path.join(bin, "certbridge-proxy-info"), ["-exists", "-valid", "3h", "-file", out], { cwd: work }).status, 1);
});
