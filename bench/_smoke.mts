import { startPortalServer, consoleLogin } from "/work/main/test/portalHarness.ts";
const portal = await startPortalServer();
try {
  const { browser, csrf } = await consoleLogin(portal.url, "alice", "/account");
  const r = await browser.go(portal.url + "/account/consents/nonexistent", { method: "POST", form: { csrf: csrf! } });
  console.log(r.status, r.url, r.html.slice(0, 300));
  const r2 = await fetch(portal.url + "/account/consents/nonexistent", { method: "POST", redirect: "manual", headers: { origin: portal.url, "content-type": "application/x-www-form-urlencoded", cookie: "x=y" }, body: "csrf=" + csrf });
  console.log(r2.status, r2.headers.get("location"));
} finally {
  console.log(portal.output().slice(-1500));
  await portal.cleanup();
}
