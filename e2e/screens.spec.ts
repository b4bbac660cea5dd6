/**
 * Every console page at a laptop's 1280×800 and a phone's 390×844, kept as screenshots in
 * test-results/: nothing scrolls sideways, and no element of the certificate and audit tables
 * overflows its container (serials, DNs, audit details wrap; the Status column is never cut
 * off). Also: a refused form keeps what was typed, with the error next to its field and not in
 * the URL; signing out says so and offers to end the development IdP's session too.
 */
import { test, expect, type Page, type TestInfo } from "@playwright/test";
import path from "node:path";
import { startPortalServer, loginThroughPortal, redeem, GATEWAY, type PortalServer } from "../test/portalHarness";
import { ROOT, run } from "../test/helpers";
import { openDatabase, type Db } from "../lib/db";
import { loadConfig } from "../lib/config";

let portal: PortalServer;
let db: Db;
const ids = { aliceProxy: "", aliceUser: "", aliceGrant: "", bobUser: "", bobProxy: "" };

async function gatewaySession(user: string) {
  const login = await loginThroughPortal(portal.url, { user, gw: GATEWAY, scope: "openid profile offline_access proxy" });
  const tokens = await redeem(login);
  const proxy = await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${tokens.access_token}` }, body: new URLSearchParams({ proxylifetime: "3600" }) });
  expect(proxy.status, await proxy.clone().text()).toBe(200);
}

test.beforeAll(async () => {
  portal = await startPortalServer();
  db = await openDatabase(loadConfig(portal.env, () => {}).databaseUrl);
  for (const user of ["alice", "bob", "zoe"]) await gatewaySession(user);
  const person = async (sub: string) => (await db.identity.findFirstOrThrow({ where: { sub } })).id;
  const [alice, bob] = [await person("alice"), await person("bob")];
  const cert = async (identityId: string, kind: string) => (await db.certificate.findFirstOrThrow({ where: { identityId, kind }, orderBy: { createdAt: "desc" } })).id;
  ids.aliceProxy = await cert(alice, "proxy");
  ids.aliceUser = await cert(alice, "user");
  ids.bobUser = await cert(bob, "user");
  ids.bobProxy = await cert(bob, "proxy");
  ids.aliceGrant = (await db.oidcPayload.findFirstOrThrow({ where: { model: "Grant", accountId: alice } })).id;
  // bob's user certificate revoked (superseded): his proxy is "revoked (issuer revoked)"
  const r = run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), "cert", "revoke", ids.bobUser, "--reason", "superseded", "--comment", "screens test"], { env: portal.env });
  expect(r.status, r.stderr).toBe(0);
});

test.afterAll(async () => {
  await db?.$disconnect();
  await portal?.cleanup();
});

async function signIn(page: Page, user: string, next: string) {
  await page.goto(`${portal.url}/login?next=${encodeURIComponent(next)}`);
  await page.getByRole("button", { name: user }).click();
  await expect(page.getByRole("navigation", { name: "Console" })).toBeVisible();
}

/** Elements of the tables on the page that stick out of their .table-wrap, or are clipped inside a cell. */
function tableOverflow(page: Page) {
  return page.evaluate(() => {
    const problems: string[] = [];
    for (const wrap of document.querySelectorAll<HTMLElement>(".table-wrap")) {
      const box = wrap.getBoundingClientRect();
      if (wrap.scrollWidth > wrap.clientWidth + 1) problems.push(`a table is ${wrap.scrollWidth - wrap.clientWidth}px wider than its container`);
      for (const el of wrap.querySelectorAll<HTMLElement>("table *")) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) continue;
        if (r.right > box.right + 1 || r.left < box.left - 1) problems.push(`<${el.tagName.toLowerCase()}> "${(el.textContent ?? "").slice(0, 40)}" sticks out by ${Math.round(r.right - box.right)}px`);
        if ((el.tagName === "TD" || el.tagName === "TH") && el.scrollWidth > el.clientWidth + 1) problems.push(`cell "${(el.textContent ?? "").slice(0, 40)}" is clipped`);
      }
    }
    return problems.slice(0, 10);
  });
}

const shot = (page: Page, info: TestInfo, name: string) => page.screenshot({ path: info.outputPath(`${name}.png`), fullPage: true });

for (const [label, viewport] of [["laptop", { width: 1280, height: 800 }], ["phone", { width: 390, height: 844 }]] as const) {
  test(`every console page fits a ${label} (${viewport.width}×${viewport.height}); the tables do not overflow`, async ({ page }, info) => {
    await page.setViewportSize(viewport);
    await signIn(page, "Alice Example", "/account");
    const pages: [string, string][] = [
      ["/", "home"],
      ["/account", "account"],
      [`/account/certificates/${ids.aliceProxy}`, "account-certificate"],
      [`/account/consents/${ids.aliceGrant}/revoke`, "account-consent-revoke"],
      ["/admin", "admin-overview"],
      ["/admin/certificates", "admin-certificates"],
      [`/admin/certificates/${ids.bobUser}`, "admin-certificate-revoked"],
      [`/admin/certificates/${ids.bobProxy}`, "admin-proxy-issuer-revoked"],
      [`/admin/certificates/${ids.aliceUser}/revoke`, "admin-certificate-revoke"],
      ["/admin/audit", "admin-audit"],
      ["/admin/clients", "admin-gateways"],
      [`/admin/clients/${GATEWAY.id}`, "admin-gateway"],
      ["/admin/clients/new", "admin-gateway-new"],
      ["/no-such-page", "not-found"],
    ];
    for (const [url, name] of pages) {
      const res = await page.goto(portal.url + url);
      expect(res?.status(), url).toBe(name === "not-found" ? 404 : 200);
      await expect(page.locator("header.site"), `${url} uses the portal's layout`).toBeVisible();
      const sideways = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(sideways, `${url} scrolls sideways`).toBeLessThanOrEqual(0);
      expect(await tableOverflow(page), url).toEqual([]);
      await shot(page, info, `${label}-${name}`);
    }
  });
}

test("what the tables say: hex serials, key sources, issuer-revoked proxies, reason names, decoded OIDs, audit by name", async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await signIn(page, "Alice Example", "/admin/certificates");
  const table = page.locator("table.data");
  await expect(table).toContainText("revoked (issuer revoked)");
  await expect(table).toContainText("server-made");
  await expect(table).not.toContainText(/\b\d{30,}\b/); // no decimal serials in the list

  await page.goto(`${portal.url}/admin/certificates/${ids.bobUser}`);
  await expect(page.locator("table.data").first()).toContainText("(superseded)");
  await expect(page.locator("table.data").first()).toContainText("(decimal)");
  await expect(page.getByRole("cell", { name: "2.25.141105318398215245305837624359461290813" })).toBeVisible();
  await page.goto(`${portal.url}/admin/certificates/${ids.bobProxy}`);
  await expect(page.getByRole("heading", { level: 1 })).toContainText("revoked (issuer revoked)");

  await page.goto(`${portal.url}/admin/audit`);
  const options = await page.locator("select[name=action] option").allTextContents();
  for (const family of ["login.*", "token.*", "admin.*", "consent.*", "proxy.*", "client.*", "certificate.*"]) expect(options, family).toContain(family);
  const audit = page.locator("table.data tbody");
  await expect(audit).toContainText("Alice Example");
  await expect(audit).not.toContainText(/user:[0-9a-f-]{8,}/);
  await expect(audit).not.toContainText('{"');
  await page.locator("select[name=action]").selectOption("login.");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page.locator("table.data tbody tr").first()).toContainText("login");
});

test("a refused form keeps what was typed, shows the error at its field, and a reload starts clean", async ({ page }, info) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await signIn(page, "Alice Example", "/admin/clients/new");
  await page.getByLabel("Name", { exact: true }).fill("Lab Portal");
  await page.getByLabel("Homepage").fill("https://lab.example.org");
  await page.getByLabel(/Redirect URIs/).fill("ftp://lab.example.org/callback");
  await page.getByLabel(/Maximum proxy lifetime/).fill("12h");
  await page.getByLabel(/Reason for this change/).fill("onboarding the lab portal");
  await page.getByRole("button", { name: "Register gateway" }).click();
  const error = page.locator("#redirect_uris-error");
  await expect(error).toBeVisible();
  await expect(page.getByLabel(/Redirect URIs/)).toHaveValue("ftp://lab.example.org/callback");
  await expect(page.getByLabel(/Redirect URIs/)).toHaveAttribute("aria-invalid", "true");
  await expect(page.getByLabel("Name", { exact: true })).toHaveValue("Lab Portal");
  await expect(page.getByLabel("Homepage")).toHaveValue("https://lab.example.org");
  await expect(page.getByLabel(/Maximum proxy lifetime/)).toHaveValue("12h");
  await expect(page.getByLabel(/Reason for this change/)).toHaveValue("onboarding the lab portal");
  expect(page.url()).not.toContain("error=");
  await shot(page, info, "form-error-gateway");
  await page.reload();
  await expect(page.locator("#redirect_uris-error")).toHaveCount(0);
  await expect(page.getByLabel("Name", { exact: true })).toHaveValue("");

  // a bad SSH key: the error at the key field, the pasted key still there
  await page.goto(`${portal.url}/account`);
  await page.getByLabel(/Public key/).fill("ssh-dss AAAAB3NzaC1kc3MAAACBAP");
  await page.getByLabel("Label").fill("old laptop");
  await page.getByRole("button", { name: "Add SSH key" }).click();
  await expect(page.locator("#public_key-error")).toContainText("DSA keys are refused");
  await expect(page.getByLabel(/Public key/)).toHaveValue("ssh-dss AAAAB3NzaC1kc3MAAACBAP");
  await expect(page.getByLabel("Label")).toHaveValue("old laptop");
  expect(page.url()).not.toContain("error=");
  await page.locator("#ssh").scrollIntoViewIfNeeded();
  await shot(page, info, "form-error-ssh-key");
});

test("signing out says so, and ends the development IdP's session too when asked", async ({ page }, info) => {
  await signIn(page, "Alice Example", "/account");
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Signed out of Certbridge" })).toBeVisible();
  await expect(page.getByRole("status")).toContainText("You may still be signed in at the development IdP");
  await shot(page, info, "signed-out");
  await page.getByRole("link", { name: "Sign out of the development IdP too" }).click();
  await expect(page.getByRole("heading", { name: "Sign out of the development IdP?" })).toBeVisible();
  await shot(page, info, "dev-idp-sign-out");
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await expect(page.getByRole("status")).toContainText("You are signed out of Certbridge and of the development IdP");
  await shot(page, info, "signed-out-everywhere");
  await page.goto(`${portal.url}/account`);
  await expect(page.getByRole("heading", { name: /Development IdP/ })).toBeVisible();
});
