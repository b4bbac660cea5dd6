/**
 * The whole story in a real browser: a researcher opens the example gateway,
 * logs in at the development IdP through Certbridge, consents, and the
 * gateway ends up holding a proxy that OpenSSL and Globus accept.
 */
import { test, expect } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { startPortalServer, freePort, type PortalServer } from "../test/portalHarness";
import { run, certificatesOf, ROOT } from "../test/helpers";

const GW = { id: "example-gateway", secret: "example-gateway-secret-0123456789abcdef" };

let portal: PortalServer;
let gateway: ChildProcess;
let gatewayUrl: string;
let proxyDir: string;
let trust: string;

test.beforeAll(async () => {
  const port = await freePort();
  gatewayUrl = `http://localhost:${port}`;
  portal = await startPortalServer({}, [
    { id: GW.id, name: "Example Gateway", homepage: "https://gateway.example.org", secret: GW.secret, redirectUris: [`${gatewayUrl}/callback`], maxProxyLifetimeSeconds: 43200 },
  ]);
  proxyDir = path.join(portal.dir, "gateway-proxies");
  gateway = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "examples/gateway/server.ts")], {
    cwd: ROOT,
    env: { ...process.env, PORTAL_URL: portal.url, GATEWAY_CLIENT_ID: GW.id, GATEWAY_CLIENT_SECRET: GW.secret, GATEWAY_PORT: String(port), PROXY_DIR: proxyDir },
    stdio: "inherit",
  });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(gatewayUrl)).ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  trust = path.join(portal.dir, "certificates");
  const bundle = run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), "ca", "bundle", "--out", trust], { env: portal.env });
  expect(bundle.status, bundle.stderr).toBe(0);
});

test.afterAll(async () => {
  gateway?.kill();
  await portal?.cleanup();
});

test("log in through the gateway, consent, and the gateway holds a verified proxy", async ({ page }, testInfo) => {
  await page.goto(gatewayUrl);
  await page.getByRole("button", { name: "Log in with Certbridge" }).click();

  // Certbridge's sign-in page, clearly marked as development mode
  await expect(page.getByRole("heading", { name: "Sign in to continue to Example Gateway" })).toBeVisible();
  await expect(page.locator(".dev-banner")).toContainText("Development mode");
  await page.screenshot({ path: testInfo.outputPath("1-portal-login.png"), fullPage: true });
  await page.getByRole("button", { name: "Continue to sign in" }).click();

  // the development IdP
  await expect(page.getByRole("heading", { name: /Development IdP/ })).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath("2-dev-idp-login.png"), fullPage: true });
  await page.getByRole("button", { name: "Alice Example" }).click();

  // consent: names the gateway and says, plainly, what it may do and for how long
  await expect(page.getByRole("heading", { name: "Allow Example Gateway to act in your name?" })).toBeVisible();
  await expect(page.locator(".warning")).toContainText("will be able to obtain certificates in your name, each valid for up to 12h");
  await expect(page.locator(".warning")).toContainText("without asking you again until");
  await page.screenshot({ path: testInfo.outputPath("3-consent.png"), fullPage: true });
  await page.getByRole("button", { name: "Allow" }).click();

  // back at the gateway, with a proxy on disk
  await expect(page.getByRole("heading", { name: "Proxy saved" })).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath("4-gateway-proxy-saved.png"), fullPage: true });
  const file = (await page.locator("#proxy-file").textContent())!;
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);

  const pem = fs.readFileSync(file, "utf8");
  expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----[\s\S]+-----BEGIN PRIVATE KEY-----[\s\S]+-----BEGIN CERTIFICATE-----/);
  const leaf = path.join(portal.dir, "leaf.pem");
  fs.writeFileSync(leaf, certificatesOf(pem)[0]!);
  const openssl = run("openssl", ["verify", "-allow_proxy_certs", "-CApath", trust, "-untrusted", file, leaf]);
  expect(openssl.status, openssl.stderr).toBe(0);
  const globus = run("grid-proxy-init", ["-verify", "-cert", file, "-key", file, "-certdir", trust, "-valid", "0:10", "-out", path.join(portal.dir, "derived.pem")]);
  expect(globus.status, globus.stderr + globus.stdout).toBe(0);
  expect(globus.stdout).toContain("Proxy Verify OK");
  const info = run("grid-proxy-info", ["-f", file, "-all"]);
  expect(info.stdout).toMatch(/identity\s+: \/DC=org\/DC=certbridge-test\/DC=users\/O=Example University\/CN=Alice Example [A-Za-z0-9-]{16}\n/);
  expect(info.stdout).toContain("RFC 3820 compliant impersonation proxy");
});

test("deny at the consent screen: the gateway is told access_denied and holds no proxy", async ({ page }) => {
  await page.goto(gatewayUrl);
  await page.getByRole("button", { name: "Log in with Certbridge" }).click();
  await page.getByRole("button", { name: "Continue to sign in" }).click();
  await page.getByRole("button", { name: "Bob Ünlü" }).click();
  await page.getByRole("button", { name: "Deny" }).click();
  await expect(page.getByRole("heading", { name: "Could not get a proxy" })).toBeVisible();
  await expect(page.locator("#error")).toContainText("access_denied");
  expect(fs.existsSync(path.join(proxyDir, "x509up_bob"))).toBe(false);
});

test("the same flow with a VO: the proxy's VOMS attributes are the development user's groups", async ({ page }) => {
  await page.goto(gatewayUrl);
  await page.getByLabel(/VO \(optional/).fill("biomed");
  await page.getByRole("button", { name: "Log in with Certbridge" }).click();
  await page.getByRole("button", { name: "Continue to sign in" }).click();
  await page.getByRole("button", { name: "Alice Example" }).click();
  await page.getByRole("button", { name: "Allow" }).click();
  await expect(page.getByRole("heading", { name: "Proxy saved" })).toBeVisible();
  const file = (await page.locator("#proxy-file").textContent())!;
  // examples/dev-users.json: alice is a member of biomed and biomed/lab1, with the role pilot (not asked for, so not in the AC)
  const vomsEnv = { X509_CERT_DIR: trust, X509_VOMS_DIR: path.join(trust, "vomsdir") };
  const info = run("voms-proxy-info2", ["-all", "-file", file], { env: vomsEnv });
  expect([...info.stdout.matchAll(/attribute : (.+)/g)].map((m) => m[1])).toEqual(["/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"]);
  expect(run("voms-proxy-info2", ["--acexists", "biomed", "-file", file], { env: vomsEnv }).status).toBe(0);
  const globus = run("grid-proxy-init", ["-verify", "-cert", file, "-key", file, "-certdir", trust, "-valid", "0:10", "-out", path.join(portal.dir, "derived-voms.pem")]);
  expect(globus.status, globus.stderr + globus.stdout).toBe(0);
});
