/**
 * Issue 12: every kind of HTML page the portal serves — Next's (home, consoles, consent, sign-in,
 * signed-out, 404), oidc-provider's own (device code entry and confirmation, logout confirmation,
 * its error page) and the development IdP's (login, logout) — carries X-Frame-Options: DENY and
 * a CSP with frame-ancestors 'none', and works under that CSP in a real browser: no violation is
 * reported, and the pages' scripts still run (a console form submits, the device flow completes
 * its steps). A page framed by another origin stays empty.
 */
import { test, expect, type Page, type Response } from "@playwright/test";
import { startPortalServer, type PortalServer } from "../test/portalHarness";

let portal: PortalServer;

test.beforeAll(async () => {
  portal = await startPortalServer();
});
test.afterAll(async () => {
  await portal?.cleanup();
});

interface Seen {
  url: string;
  status: number;
  headers: Record<string, string>;
}

/** Record each top-level document response and every CSP violation Chromium reports. */
function watch(page: Page): { documents: Seen[]; violations: string[] } {
  const documents: Seen[] = [];
  const violations: string[] = [];
  page.on("response", async (r: Response) => {
    if (r.request().resourceType() !== "document" || r.request().frame() !== page.mainFrame()) return;
    documents.push({ url: r.url(), status: r.status(), headers: await r.allHeaders() });
  });
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to (execute|load|apply|frame)/i.test(m.text())) violations.push(m.text());
  });
  return { documents, violations };
}

function expectProtected(d: Seen) {
  expect(d.headers["x-frame-options"], d.url).toBe("DENY");
  const csp = d.headers["content-security-policy"] ?? "";
  expect(csp, d.url).toContain("frame-ancestors 'none'");
  expect(csp, d.url).toContain("object-src 'none'");
  expect(csp, d.url).toContain("base-uri 'none'");
  expect(csp, d.url).not.toContain("unsafe-eval");
}

test("every kind of page carries framing protection and a CSP, and works under it", async ({ page }) => {
  const { documents, violations } = watch(page);
  const visited = new Set<string>();
  const at = async (label: string) => {
    const last = documents[documents.length - 1];
    expect(last, label).toBeTruthy();
    expectProtected(last!);
    visited.add(label);
  };

  await page.goto(`${portal.url}/`);
  await at("home (Next)");

  const missing = await page.goto(`${portal.url}/no-such-page`);
  expect(missing?.status()).toBe(404);
  await at("404 (Next)");

  // The development IdP's login page (reached through the console sign-in).
  await page.goto(`${portal.url}/login?next=/account`);
  await expect(page.getByRole("button", { name: "Alice Example" })).toBeVisible();
  expect(page.url()).toContain("/dev-idp/");
  await at("dev IdP login");
  await page.getByRole("button", { name: "Alice Example" }).click();
  await expect(page.getByRole("heading", { name: "Your account" })).toBeVisible();
  await at("account console (Next)");

  // oidc-provider's device pages: code entry, then confirmation.
  const device = (await (await fetch(`${portal.url}/oidc/device/auth`, { method: "POST", body: new URLSearchParams({ client_id: "certbridge-cli", scope: "openid proxy" }) })).json()) as { user_code: string };
  await page.goto(`${portal.url}/oidc/device`);
  await expect(page.getByRole("heading", { name: "Sign in to a terminal" })).toBeVisible();
  await at("device code entry (oidc-provider)");
  await page.getByPlaceholder("Enter code").fill(device.user_code);
  await page.getByRole("button", { name: "Continue" }).click();
  await expect(page.getByRole("heading", { name: "Is this your terminal?" })).toBeVisible();
  await at("device confirmation (oidc-provider)");
  // On through sign-in and consent (Next pages), to oidc-provider's success page; this also gives the browser a portal session to log out of.
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByRole("button", { name: "Continue to sign in" }).click();
  const alice = page.getByRole("button", { name: "Alice Example" });
  const allow = page.getByRole("button", { name: "Allow" });
  await expect(alice.or(allow)).toBeVisible();
  if (await alice.isVisible()) await alice.click();
  await expect(allow).toBeVisible();
  await at("consent (Next)");
  await allow.click();
  await expect(page.getByRole("heading", { name: "Your terminal is signed in" })).toBeVisible();
  await at("device success (oidc-provider)");

  // oidc-provider's error page.
  await page.goto(`${portal.url}/oidc/auth?client_id=nobody&response_type=code&scope=openid`);
  await expect(page.getByRole("alert")).toBeVisible();
  await at("error page (oidc-provider)");

  // oidc-provider's logout confirmation, then the dev IdP's.
  await page.goto(`${portal.url}/oidc/session/end`);
  await expect(page.getByRole("heading", { name: "Sign out?" })).toBeVisible();
  await at("logout confirmation (oidc-provider)");
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Signed out" })).toBeVisible();
  await at("after logout (oidc-provider)");
  await page.goto(`${portal.url}/dev-idp/session/end`);
  await expect(page.getByRole("heading", { name: "Sign out of the development IdP?" })).toBeVisible();
  await at("logout confirmation (dev IdP)");

  // The console's sign-out (a Next route and page).
  await page.goto(`${portal.url}/account`);
  await page.getByRole("button", { name: /sign out/i }).first().click();
  await expect(page).toHaveURL(/\/signed-out$/);
  await at("signed out (Next)");

  expect(violations, violations.join("\n")).toEqual([]);
  expect([...visited]).toEqual([
    "home (Next)",
    "404 (Next)",
    "dev IdP login",
    "account console (Next)",
    "device code entry (oidc-provider)",
    "device confirmation (oidc-provider)",
    "consent (Next)",
    "device success (oidc-provider)",
    "error page (oidc-provider)",
    "logout confirmation (oidc-provider)",
    "after logout (oidc-provider)",
    "logout confirmation (dev IdP)",
    "signed out (Next)",
  ]);
  for (const d of documents) expectProtected(d);
});

test("a page framed by another origin is not shown", async ({ page }) => {
  // The frame's load event fires also when Chromium refuses the framed response (it then shows an error document).
  await page.setContent(`<iframe id="f" src="${portal.url}/oidc/device" width="600" height="400" onload="window.framed = true"></iframe>`);
  await page.waitForFunction(() => (window as unknown as { framed?: boolean }).framed === true);
  await expect(page.frameLocator("#f").getByRole("heading", { name: "Sign in to a terminal" })).toHaveCount(0);
  // The same page at the top level shows that heading: the frame was blocked, not empty.
  await page.goto(`${portal.url}/oidc/device`);
  await expect(page.getByRole("heading", { name: "Sign in to a terminal" })).toBeVisible();
});
