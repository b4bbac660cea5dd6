/**
 * A researcher at a terminal: certbridge-proxy-init prints a code and a URL,
 * the person opens it in a real browser, enters the code, signs in at the
 * development IdP and consents on a page that says the request comes from a
 * terminal and shows the same code. The CLI then holds a 0600 proxy that
 * Globus verifies, and certbridge-proxy-info agrees with grid-proxy-info.
 */
import { test, expect } from "@playwright/test";
import fs from "node:fs";
import path from "node:path";
import { startPortalServer, type PortalServer } from "../test/portalHarness";
import { run, ROOT } from "../test/helpers";
import { openDatabase } from "../lib/db";
import { loadConfig } from "../lib/config";
import { loginPrompt, PROXY_INFO, PROXY_INIT, startCli } from "../test/deviceHarness";

let portal: PortalServer;
let trust: string;

test.beforeAll(async () => {
  portal = await startPortalServer();
  trust = path.join(portal.dir, "certificates");
  const bundle = run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), "ca", "bundle", "--out", trust], { env: portal.env });
  expect(bundle.status, bundle.stderr).toBe(0);
});

test.afterAll(async () => {
  await portal?.cleanup();
});

test("terminal login: enter the code, sign in, consent, and the CLI writes a proxy Globus verifies", async ({ page }, testInfo) => {
  const out = path.join(portal.dir, "x509up_terminal");
  // the default output is $X509_USER_PROXY, as for voms-proxy-init
  const cli = startCli(PROXY_INIT, ["--portal", portal.url, "--qr"], { X509_USER_PROXY: out });
  const { url, userCode } = await loginPrompt(cli);
  await cli.waitFor(/Waiting for you to sign in/);
  expect(cli.stdout()).toContain("▄"); // the QR code, printed before waiting

  // the person types the code at the verification URI (RFC 8628 §3.3)
  await page.goto(new URL("/oidc/device", url).href);
  await expect(page.getByRole("heading", { name: "Sign in to a terminal" })).toBeVisible();
  await page.getByPlaceholder("Enter code").fill(userCode.toLowerCase().replace("-", ""));
  await page.screenshot({ path: testInfo.outputPath("1-device-code-entry.png"), fullPage: true });
  await page.getByRole("button", { name: "Continue" }).click();

  // confirmation: the code as the terminal shows it, and where the request came from
  await expect(page.getByRole("heading", { name: "Is this your terminal?" })).toBeVisible();
  await expect(page.locator("#user-code")).toHaveText(userCode);
  await page.screenshot({ path: testInfo.outputPath("2-device-confirm.png"), fullPage: true });
  await page.getByRole("button", { name: "Continue" }).click();

  await expect(page.getByRole("heading", { name: "Sign in to continue to Certbridge command line (certbridge-proxy-init)" })).toBeVisible();
  await expect(page.locator(".terminal")).toContainText(userCode);
  await page.getByRole("button", { name: "Continue to sign in" }).click();
  await page.getByRole("button", { name: "Alice Example" }).click();

  // consent: it says the request comes from a terminal, and shows the code to compare
  await expect(page.getByRole("heading", { name: "Allow Certbridge command line (certbridge-proxy-init) to act in your name?" })).toBeVisible();
  await expect(page.locator(".terminal-notice")).toContainText("This request comes from a terminal");
  await expect(page.locator("#terminal-user-code")).toHaveText(userCode);
  await page.screenshot({ path: testInfo.outputPath("3-terminal-consent.png"), fullPage: true });
  await page.getByRole("button", { name: "Allow" }).click();
  await expect(page.getByRole("heading", { name: "Your terminal is signed in" })).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath("4-device-success.png"), fullPage: true });

  expect(await cli.exited, cli.stderr()).toBe(0);
  expect(cli.stdout()).toContain(`Your proxy is in ${out}`);
  expect(fs.statSync(out).mode & 0o777).toBe(0o600);
  const pem = fs.readFileSync(out, "utf8");
  expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----[\s\S]+-----BEGIN PRIVATE KEY-----[\s\S]+-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\n$/);

  const globus = run("grid-proxy-init", ["-verify", "-cert", out, "-key", out, "-certdir", trust, "-valid", "0:10", "-out", path.join(portal.dir, "derived.pem")]);
  expect(globus.status, globus.stderr + globus.stdout).toBe(0);
  expect(globus.stdout).toContain("Proxy Verify OK");

  // certbridge-proxy-info and grid-proxy-info agree
  const ours = run(process.execPath, [PROXY_INFO, "--file", out]);
  expect(ours.status, ours.stderr).toBe(0);
  const field = (text: string, name: string) => new RegExp(`^${name}\\s*: (.+)$`, "m").exec(text)?.[1];
  const globusInfo = run("grid-proxy-info", ["-f", out, "-all"]);
  for (const name of ["subject", "issuer", "identity", "type", "strength", "path"]) {
    expect(field(ours.stdout, name), name).toBe(field(globusInfo.stdout, name));
  }
  expect(field(ours.stdout, "type")).toBe("RFC 3820 compliant impersonation proxy");
  const ourLeft = Number(run(process.execPath, [PROXY_INFO, "--timeleft", "--file", out]).stdout);
  const globusLeft = Number(run("grid-proxy-info", ["-f", out, "-timeleft"]).stdout);
  expect(Math.abs(ourLeft - globusLeft)).toBeLessThanOrEqual(5);
  expect(ourLeft).toBeGreaterThan(11 * 3600); // the portal's default 12 h

  // the script checks
  expect(run(process.execPath, [PROXY_INFO, "--exists", "--file", out]).status).toBe(0);
  expect(run(process.execPath, [PROXY_INFO, "--exists", "--valid", "11:00", "--file", out]).status).toBe(0);
  expect(run(process.execPath, [PROXY_INFO, "--exists", "--valid", "13:00", "--file", out]).status).toBe(1);
  expect(run("grid-proxy-info", ["-f", out, "-exists", "-valid", "11:00"]).status).toBe(0);

  // the audit trail names the terminal client for the login's consent and the issuance, with the CSR key
  const db = await openDatabase(loadConfig(portal.env, () => {}).databaseUrl);
  try {
    const serial = run("grid-proxy-info", ["-f", out, "-subject"]).stdout.trim().split("/CN=").pop()!;
    const issued = await db.auditEvent.findFirst({ where: { action: "proxy.issue", details: { contains: `"serial":${serial}` } }, select: { clientId: true, actor: true, details: true } });
    expect(issued).toMatchObject({ clientId: "certbridge-cli", actor: "client:certbridge-cli" });
    expect(issued!.details).toContain('"keySource":"csr"');
    expect(await db.auditEvent.count({ where: { action: "consent.grant", clientId: "certbridge-cli" } })).toBeGreaterThanOrEqual(1);
  } finally {
    await db.$disconnect();
  }
});

test("--voms biomed: the proxy carries the development user's groups (her role only when asked for)", async ({ page }) => {
  const out = path.join(portal.dir, "x509up_voms");
  const cli = startCli(PROXY_INIT, ["--portal", portal.url, "--voms", "biomed", "--valid", "02:00", "--out", out]);
  const { url } = await loginPrompt(cli);
  // the complete URI carries the code: straight to the confirmation
  await page.goto(url);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByRole("button", { name: "Continue to sign in" }).click();
  await page.getByRole("button", { name: "Alice Example" }).click();
  await page.getByRole("button", { name: "Allow" }).click();
  await expect(page.getByRole("heading", { name: "Your terminal is signed in" })).toBeVisible();
  expect(await cli.exited, cli.stderr()).toBe(0);
  expect(cli.stdout()).toContain("VO biomed: /biomed/Role=NULL/Capability=NULL /biomed/lab1/Role=NULL/Capability=NULL\n");

  const info = run(process.execPath, [PROXY_INFO, "--file", out]);
  expect(info.stdout).toContain("=== VO biomed extension information ===");
  expect([...info.stdout.matchAll(/^attribute : (.+)$/gm)].map((m) => m[1])).toEqual(["/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"]);
  // VOMS-C reads the same attributes
  const vomsEnv = { X509_CERT_DIR: trust, X509_VOMS_DIR: path.join(trust, "vomsdir") };
  const voms = run("voms-proxy-info2", ["-all", "-file", out], { env: vomsEnv });
  expect([...voms.stdout.matchAll(/attribute : (.+)/g)].map((m) => m[1])).toEqual(["/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"]);
  const left = Number(run(process.execPath, [PROXY_INFO, "--timeleft", "--file", out]).stdout);
  expect(left).toBeGreaterThan(7000);
  expect(left).toBeLessThanOrEqual(7200);
});

test("deny at the consent screen: the CLI says so and writes nothing", async ({ page }) => {
  const out = path.join(portal.dir, "x509up_denied");
  const cli = startCli(PROXY_INIT, ["--portal", portal.url, "--out", out]);
  const { url } = await loginPrompt(cli);
  await page.goto(url);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByRole("button", { name: "Continue to sign in" }).click();
  await page.getByRole("button", { name: "Bob Ünlü" }).click();
  await page.getByRole("button", { name: "Deny" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "cancelled" })).toBeVisible();
  expect(await cli.exited).toBe(1);
  expect(cli.stderr()).toBe("certbridge-proxy-init: the login was denied in the browser (or cancelled): no proxy was issued\n");
  expect(fs.existsSync(out)).toBe(false);
});
