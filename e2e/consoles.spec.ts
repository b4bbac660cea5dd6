/**
 * The consoles in a real browser, against the production server entry:
 * an administrator finds, inspects and revokes a certificate and the CRL
 * lists it; a non-administrator is refused; a person withdraws a gateway's
 * consent and the gateway loses access; a suspended gateway is refused.
 * Every page visited is kept as a screenshot in test-results/.
 */
import { test, expect, type Page, type TestInfo } from "@playwright/test";
import fs from "node:fs";
import path from "node:path";
import * as client from "openid-client";
import { startPortalServer, loginThroughPortal, redeem, GATEWAY, OTHER_GATEWAY, type PortalServer } from "../test/portalHarness";
import { run } from "../test/helpers";

let portal: PortalServer;

test.beforeAll(async () => {
  portal = await startPortalServer();
});

test.afterAll(async () => {
  await portal?.cleanup();
});

async function signIn(page: Page, user: string, next: string) {
  await page.goto(`${portal.url}/login?next=${encodeURIComponent(next)}`);
  await expect(page.getByRole("heading", { name: /Development IdP/ })).toBeVisible();
  await page.getByRole("button", { name: user }).click();
}

const shot = (page: Page, info: TestInfo, name: string) => page.screenshot({ path: info.outputPath(`${name}.png`), fullPage: true });

/** A gateway's session for a person: tokens, and a proxy already issued through it. */
async function gatewaySession(user: string, gw = GATEWAY) {
  const login = await loginThroughPortal(portal.url, { user, gw, scope: "openid profile offline_access proxy" });
  const tokens = await redeem(login);
  const proxy = await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${tokens.access_token}` }, body: new URLSearchParams({ proxylifetime: "3600" }) });
  expect(proxy.status, await proxy.clone().text()).toBe(200);
  return { tokens, config: login.config, serial: proxy.headers.get("x-proxy-serial")! };
}

const getProxy = (accessToken: string) => fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${accessToken}` } });

test("an administrator finds a certificate by part of its subject, revokes it, and the CRL lists it", async ({ page }, info) => {
  await gatewaySession("bob");
  await signIn(page, "Alice Example", "/admin");

  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
  await expect(page.getByRole("img", { name: /Proxies issued per day/ })).toBeVisible();
  await shot(page, info, "1-admin-overview");

  await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Certificates" }).click();
  await page.getByLabel("Subject contains").fill("Bob");
  await page.getByLabel("Kind").selectOption("user");
  await page.getByRole("button", { name: "Search" }).click();
  const rows = page.locator("table.data tbody tr");
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText("Bob");
  await shot(page, info, "2-admin-certificates-search");

  await rows.first().getByRole("link").first().click();
  await expect(page.getByRole("heading", { name: /User certificate [0-9a-f]+ valid/ })).toBeVisible();
  await expect(page.getByRole("cell", { name: "CRL distribution points" })).toBeVisible();
  await expect(page.locator("table.data").first()).toContainText("127.0.0.1");
  const serial = (await page.getByRole("heading", { level: 1 }).textContent())!.match(/certificate ([0-9a-f]+)/)![1]!;
  await shot(page, info, "3-admin-certificate-detail");

  // PEM download
  const download = page.waitForEvent("download");
  await page.getByRole("link", { name: "Download PEM" }).click();
  const pemFile = path.join(portal.dir, "downloaded.pem");
  await (await download).saveAs(pemFile);
  expect(run("openssl", ["x509", "-in", pemFile, "-noout", "-serial"]).stdout.toLowerCase()).toContain(serial.toLowerCase().replace(/^0+/, ""));

  // the confirmation step refuses without a comment and a tick (browser validation), then revokes
  await page.getByRole("link", { name: "Revoke this certificate…" }).click();
  await expect(page.getByRole("heading", { name: `Revoke user certificate ${serial}?` })).toBeVisible();
  await page.getByLabel(/Reason/).selectOption("keyCompromise");
  await page.getByLabel(/Comment/).fill("laptop stolen, ticket 4711");
  await shot(page, info, "4-admin-revoke-confirm");
  await page.getByRole("button", { name: "Revoke certificate" }).click();
  await expect(page.getByLabel(/I understand/)).toBeFocused(); // the required tick stops the submission
  await page.getByLabel(/I understand/).check();
  await page.getByRole("button", { name: "Revoke certificate" }).click();
  await expect(page.getByRole("status")).toContainText(`Certificate ${serial} revoked (keyCompromise)`);
  await expect(page.getByRole("heading", { level: 1 })).toContainText("revoked");
  await expect(page.locator("table.data").last()).toContainText("certificate.revoke");
  await shot(page, info, "5-admin-certificate-revoked");

  const crl = await page.request.get(`${portal.url}/ca/crl.der`);
  expect(crl.status()).toBe(200);
  const crlFile = path.join(portal.dir, "crl.der");
  fs.writeFileSync(crlFile, await crl.body());
  const text = run("openssl", ["crl", "-inform", "DER", "-in", crlFile, "-noout", "-text"]).stdout;
  expect(text.toUpperCase()).toContain(`SERIAL NUMBER: ${serial.toUpperCase()}`);
  expect(text).toContain("Key Compromise");

  // the audit log shows it, with who and why
  await page.goto(`${portal.url}/admin/audit?action=certificate.revoke`);
  await expect(page.locator("table.data tbody tr")).toHaveCount(1);
  await expect(page.locator("table.data tbody")).toContainText("laptop stolen, ticket 4711 (by Alice Example (alice))");
  await shot(page, info, "6-admin-audit");
});

test("a person who is not an administrator gets 403 at /admin", async ({ page }, info) => {
  await signIn(page, "Bob Ünlü", "/admin");
  await expect(page.getByRole("heading", { name: "Administrators only" })).toBeVisible();
  const status = await page.request.get(`${portal.url}/admin/certificates`);
  expect(status.status()).toBe(403);
  await shot(page, info, "7-admin-forbidden");
  // and they are not sent round in circles: their own account works
  await page.getByRole("link", { name: "Go to your account" }).click();
  await expect(page.getByRole("heading", { name: "Your account" })).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Certificates" })).toHaveCount(0);
});

test("a person revokes a gateway's consent: its next /getproxy and refresh fail", async ({ page }, info) => {
  const gw = await gatewaySession("zoe");
  await signIn(page, "Zoë Łukasiewicz", "/account");
  await expect(page.getByRole("heading", { name: "Your account" })).toBeVisible();
  await expect(page.locator("#consents + div")).toContainText("Test Gateway");
  await expect(page.getByRole("cell", { name: "proxy", exact: false }).first()).toBeVisible();
  await shot(page, info, "8-account");

  await page.getByRole("link", { name: "Revoke consent for Test Gateway…" }).click();
  await expect(page.getByRole("heading", { name: "Revoke your consent for Test Gateway?" })).toBeVisible();
  await shot(page, info, "8b-account-revoke-confirm");
  await page.getByRole("button", { name: "Revoke consent for Test Gateway" }).click();
  await expect(page.getByRole("status")).toContainText("Consent for Test Gateway (test-gateway) revoked");
  await expect(page.getByText("No gateway currently holds your consent.")).toBeVisible();
  await shot(page, info, "9-account-consent-revoked");

  const proxy = await getProxy(gw.tokens.access_token);
  expect(proxy.status).toBe(401);
  expect((await proxy.json()).error).toBe("invalid_token");
  await expect(client.refreshTokenGrant(gw.config, gw.tokens.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });

  // the person's certificate list and detail view
  await page.locator("#certs + div table a").first().click();
  await expect(page.getByRole("heading", { name: /certificate/ })).toBeVisible();
  await shot(page, info, "10-account-certificate");
});

test("an administrator suspends a gateway: its tokens stop working at /getproxy", async ({ page }, info) => {
  const gw = await gatewaySession("alice", OTHER_GATEWAY);
  await signIn(page, "Alice Example", "/admin/clients");
  await expect(page.getByRole("heading", { name: "Gateways" })).toBeVisible();
  await shot(page, info, "11-admin-gateways");
  await page.getByRole("link", { name: "Other Gateway" }).click();
  await shot(page, info, "12-admin-gateway");
  await page.locator("form", { has: page.getByRole("button", { name: "Suspend gateway" }) }).getByLabel("Reason").fill("security incident INC-7");
  await page.getByRole("button", { name: "Suspend gateway" }).click();
  await expect(page.getByRole("status")).toContainText("Gateway suspended");
  await expect(page.getByRole("heading", { level: 1 })).toContainText("suspended");

  // client rows are cached for up to 2 s per worker
  let status = 0;
  for (let i = 0; i < 30 && status !== 401; i++) {
    status = (await getProxy(gw.tokens.access_token)).status;
    if (status !== 401) await new Promise((r) => setTimeout(r, 200));
  }
  expect(status).toBe(401);
  await expect(client.refreshTokenGrant(gw.config, gw.tokens.refresh_token!)).rejects.toBeTruthy();
});

test("an administrator registers a gateway and sees its secret exactly once", async ({ page }, info) => {
  await signIn(page, "Alice Example", "/admin/clients/new");
  await page.getByLabel("Client id").fill("lab-portal");
  await page.getByLabel("Name", { exact: true }).fill("Lab Portal");
  await page.getByLabel("Homepage").fill("https://lab.example.org");
  await page.getByLabel(/Redirect URIs/).fill("https://lab.example.org/callback");
  await page.getByLabel("Only the VOs ticked below").check();
  await page.getByLabel("biomed", { exact: true }).check();
  await page.getByLabel(/Maximum proxy lifetime/).fill("12h");
  await page.getByLabel(/Reason for this change/).fill("onboarding the lab portal");
  await shot(page, info, "13-admin-gateway-new");
  await page.getByRole("button", { name: "Register gateway" }).click();
  await expect(page.getByRole("heading", { name: "Client secret" })).toBeVisible();
  const secret = (await page.locator("code.secret").textContent())!;
  expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
  await shot(page, info, "14-admin-gateway-secret");
  await page.reload();
  await expect(page.locator("code.secret")).toHaveCount(0);
  await expect(page.getByText("was already shown")).toBeVisible();
  await page.getByRole("link", { name: "Continue to the gateway" }).click();
  await expect(page.getByRole("heading", { name: /Lab Portal/ })).toBeVisible();
  await expect(page.locator("table.data")).toContainText("client.register");
});

test("an administrator gives a gateway the MasterPortal profile: it may then log in without PKCE", async ({ page }, info) => {
  await signIn(page, "Alice Example", `/admin/clients/${GATEWAY.id}`);
  await expect(page.getByLabel(/None: PKCE required/)).toBeChecked();
  await page.getByLabel(/MasterPortal \/ OA4MP/).check();
  await page.getByLabel(/Reason for this change/).fill("a MasterPortal gateway (DIRAC)");
  await shot(page, info, "14b-admin-gateway-profile");
  await page.getByRole("button", { name: "Save changes" }).click();
  await expect(page.getByRole("status")).toContainText("Changes saved");
  await expect(page.getByLabel(/MasterPortal \/ OA4MP/)).toBeChecked();
  // DIRAC's authorization request: no code_challenge, a leading + in the scope (the profile lookup is cached 2 s)
  const url = `${portal.url}/oidc/auth?response_type=code&client_id=${GATEWAY.id}&redirect_uri=${encodeURIComponent(GATEWAY.redirect)}&scope=+openid+proxy&state=pw`;
  let location = "";
  for (let i = 0; i < 30 && !location.includes("/interaction/"); i++) {
    location = (await fetch(url, { redirect: "manual" })).headers.get("location") ?? "";
    if (!location.includes("/interaction/")) await new Promise((r) => setTimeout(r, 200));
  }
  expect(location).toContain("/interaction/");
  await page.getByLabel(/None: PKCE required/).check();
  await page.getByLabel(/Reason for this change/).fill("back to the default");
  await page.getByRole("button", { name: "Save changes" }).click();
  await expect(page.getByRole("status")).toContainText("Changes saved");
});

test("a person adds an SSH key on the account page and deletes it again", async ({ page }, info) => {
  const dir = fs.mkdtempSync(path.join(portal.dir, "ssh-"));
  expect(run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "bob@laptop", "-f", path.join(dir, "id")]).status).toBe(0);
  const pub = fs.readFileSync(path.join(dir, "id.pub"), "utf8");
  const fingerprint = run("ssh-keygen", ["-l", "-E", "sha256", "-f", path.join(dir, "id.pub")]).stdout.split(" ")[1]!;
  await signIn(page, "Bob Ünlü", "/account");
  await page.getByLabel(/Public key/).fill("ssh-dss AAAAB3NzaC1kc3MAAACBAP");
  await page.getByRole("button", { name: "Add SSH key" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "DSA keys are refused" })).toBeVisible();
  await page.getByLabel(/Public key/).fill(pub);
  await page.getByLabel("Label").fill("laptop");
  await page.getByRole("button", { name: "Add SSH key" }).click();
  await expect(page.getByRole("status")).toContainText(`SSH key "laptop" (${fingerprint}) added`);
  await expect(page.getByRole("cell", { name: fingerprint })).toBeVisible();
  await page.locator("#ssh").scrollIntoViewIfNeeded();
  await shot(page, info, "15-account-ssh-keys");
  await page.getByRole("button", { name: "Delete SSH key laptop" }).click();
  await expect(page.getByRole("status")).toContainText("SSH key deleted");
  await expect(page.getByRole("cell", { name: fingerprint })).toHaveCount(0);
});

test("the consoles fit a phone's screen: no page scrolls sideways", async ({ page }, info) => {
  await gatewaySession("alice");
  await page.setViewportSize({ width: 390, height: 844 });
  await signIn(page, "Alice Example", "/account");
  for (const [url, name] of [["/account", "16-phone-account"], ["/admin", "17-phone-admin-overview"], ["/admin/certificates", "18-phone-admin-certificates"], ["/admin/audit", "19-phone-admin-audit"], ["/admin/clients", "20-phone-admin-gateways"]] as const) {
    await page.goto(portal.url + url);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, url).toBeLessThanOrEqual(0);
    await shot(page, info, name);
  }
});
