/**
 * Issue 12, web hardening, against the production server entry: logout ends the console session
 * server-side (the old cookie replayed is signed out), a 413 closes the connection, a repeated
 * Authorization header is a 400, framing/CSP headers on the server entry's own pages and HSTS
 * under an https public URL, and display names without hidden controls at every place they show.
 * (e2e/headers.spec.ts checks the headers of every kind of page in Chromium.)
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { startPortalServer, consoleLogin, loginThroughPortal, Browser, type PortalServer } from "./portalHarness";
import { displayText } from "../lib/displayText";
import { tempDir } from "./helpers";
import { closeDatabase, openDatabase } from "../lib/db";
import { findGatewayClientMetadata } from "../lib/oidc/clients";

const RLO = "\u202E";
const EVIL_NAME = `Mallory ${RLO}gnp.exe${"\u202C"}\u200B Smith ${"x".repeat(400)}`;

let portal: PortalServer;
let usersDir = "";

before(async () => {
  const dir = (usersDir = tempDir("certbridge-users-"));
  const users = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, "../examples/dev-users.json"), "utf8")) as Record<string, unknown>[];
  users.push({ sub: "mallory", name: EVIL_NAME, email: "mallory@example.org", eduperson_unique_id: "mallory-1@example.org" });
  const usersFile = path.join(dir, "users.json");
  fs.writeFileSync(usersFile, JSON.stringify(users));
  portal = await startPortalServer({ CERTBRIDGE_DEV_USERS_FILE: usersFile }, [
    { id: "bidi-gateway", name: `Good Gateway${RLO}lanretxe`, secret: "bidi-gateway-secret-0123456789abcdef", redirectUris: ["http://localhost:9/bidi"], scopes: ["openid", "profile", "proxy"] },
    // Confidential, without a secret in the file: the portal generates one at start.
    { id: "generated-secret-gateway", name: "Generated Secret", redirectUris: ["http://localhost:9/generated"] },
  ]);
});
after(async () => {
  await portal?.cleanup();
  if (usersDir) fs.rmSync(usersDir, { recursive: true, force: true });
});

/** Raw HTTP: what fetch cannot send (a header twice) or will not do (stream a body the server refused). */
function rawRequest(head: string, opts: { bodyBytes?: number } = {}): Promise<{ response: string; closedByServer: boolean; sentBytes: number }> {
  const { port } = new URL(portal.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), "127.0.0.1");
    let response = "";
    let sent = 0;
    let closedByServer = false;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const pump = () => {
      while (opts.bodyBytes && sent < opts.bodyBytes && !socket.destroyed) {
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once("drain", pump);
      }
    };
    socket.on("connect", () => {
      socket.write(head);
      pump();
    });
    socket.on("data", (d: Buffer) => (response += d.toString("latin1")));
    socket.on("end", () => {
      // The server's FIN: the answer is complete; stop streaming, as a client reading the answer would.
      closedByServer = true;
      socket.destroy();
    });
    socket.on("error", (e: NodeJS.ErrnoException) => {
      // The server closing while we still stream is the point of the 413 test.
      if (e.code === "ECONNRESET" || e.code === "EPIPE") closedByServer = true;
      else reject(e);
    });
    socket.on("close", () => resolve({ response, closedByServer, sentBytes: sent }));
    // Without a body to stream, a keep-alive answer leaves the socket open: close it ourselves once answered.
    if (!opts.bodyBytes) socket.on("data", () => setImmediate(() => /\r\n\r\n/.test(response) && socket.end()));
  });
}

describe("the server log", () => {
  test("a generated client secret is not in the server log; the log says how to get one", async () => {
    const db = await openDatabase(portal.env.DATABASE_URL ?? `file:${path.join(portal.dir, "certbridge.db")}`);
    let secret: string | undefined;
    try {
      const meta = (await findGatewayClientMetadata(db, Buffer.from(portal.env.CERTBRIDGE_KEK!, "base64"), "generated-secret-gateway")) as { client_secret?: string } | undefined;
      secret = meta?.client_secret;
    } finally {
      await closeDatabase(db);
    }
    assert.ok(secret && secret.length >= 32, "a secret was generated");
    assert.equal(portal.output().includes(secret), false);
    assert.match(portal.output(), /client generated-secret-gateway \(Generated Secret\) registered; it has a generated secret, not shown: run `certbridge client secret generated-secret-gateway`/);
  });
});

describe("logout", () => {
  test("logout ends the console session server-side: the old cookie replayed is signed out", async () => {
    const { browser, page } = await consoleLogin(portal.url, "alice");
    assert.equal(page.status, 200);
    assert.match(page.html, /Alice Example/);
    const jar = (browser as unknown as { jar: Map<string, Map<string, { name: string; value: string }>> }).jar;
    const sessionCookie = [...jar.values()].flatMap((m) => [...m.values()]).find((c) => c.name === "certbridge_session");
    assert.ok(sessionCookie, "a console session cookie");
    const replay = () => fetch(`${portal.url}/account`, { headers: { cookie: `certbridge_session=${sessionCookie.value}` }, redirect: "manual" });
    const before = await replay();
    assert.equal(before.status, 200, "the cookie works before logout");
    const out = await browser.go(`${portal.url}/logout`, { method: "POST", form: {} });
    assert.match(out.url, /\/signed-out$/);
    const afterLogout = await replay();
    assert.equal(afterLogout.status, 307, "signed out: sent to sign in");
    assert.match(afterLogout.headers.get("location") ?? "", /^\/login\?next=%2Faccount/);
    // A new sign-in works as before.
    const again = await consoleLogin(portal.url, "alice");
    assert.equal(again.page.status, 200);
  });
});

describe("requests the server refuses outright", () => {
  test("a 413 closes the connection: Connection: close, and the server ends the socket while the client still streams", async () => {
    // More than loopback's socket buffers can hold (several MB each way): being cut off shows the server stopped reading.
    const bodyBytes = 64 * 1024 * 1024;
    // Declared up front, and chunked (the whole body as one chunk).
    const framings = {
      "content-length": `Content-Length: ${bodyBytes}\r\n\r\n`,
      chunked: `Transfer-Encoding: chunked\r\n\r\n${bodyBytes.toString(16)}\r\n`,
    };
    // Repeated: the answer must arrive every time, not be lost to a reset sent while the client streams.
    for (let round = 0; round < 10; round++) {
      for (const target of ["/getproxy", "/oidc/token"]) {
        for (const [framing, head] of Object.entries(framings)) {
          const label = `round ${round}, ${target}, ${framing}`;
          const r = await rawRequest(`POST ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n${head}`, { bodyBytes });
          assert.match(r.response, /^HTTP\/1\.1 413 /, `${label}: ${JSON.stringify(r.response.slice(0, 200))}`);
          assert.match(r.response, /\r\nconnection: close\r\n/i, label);
          assert.ok(r.closedByServer, `${label}: the server closed the connection`);
          assert.ok(r.sentBytes < bodyBytes, `${label}: cut off after ${r.sentBytes} of ${bodyBytes} bytes`);
        }
      }
    }
  });

  test("two Authorization headers are a 400 invalid_request, on every endpoint; one is served as before", async () => {
    for (const target of ["/getproxy", "/oidc/me", "/account", "/oidc/token"]) {
      const r = await rawRequest(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer aaaaaaaa\r\nauthorization: Bearer bbbbbbbb\r\nConnection: close\r\n\r\n`);
      assert.match(r.response, /^HTTP\/1\.1 400 /, `${target}: ${r.response.slice(0, 300)}`);
      assert.match(r.response, /"error":"invalid_request"/, target);
      assert.match(r.response, /more than one Authorization header/, target);
    }
    const one = await rawRequest(`GET /oidc/me HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer aaaaaaaa\r\nConnection: close\r\n\r\n`);
    assert.match(one.response, /^HTTP\/1\.1 401 /);
  });
});

describe("headers", () => {
  test("pages outside Next (oidc-provider, the development IdP) and JSON answers carry the framing and CSP headers; no HSTS over http", async () => {
    for (const target of ["/oidc/device", "/oidc/auth?client_id=nobody", "/oidc/session/end", "/dev-idp/session/end", "/getproxy", "/", "/no-such-page"]) {
      const res = await fetch(`${portal.url}${target}`, { redirect: "manual" });
      assert.equal(res.headers.get("x-frame-options"), "DENY", target);
      assert.match(res.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/, target);
      assert.match(res.headers.get("content-security-policy") ?? "", /base-uri 'none'/, target);
      assert.equal(res.headers.get("strict-transport-security"), null, target);
    }
  });

  test("HSTS when the public URL is https", async () => {
    const https = await startPortalServer({ CERTBRIDGE_PUBLIC_URL: "https://portal.example.org" });
    try {
      const port = https.env.CERTBRIDGE_PORT!;
      for (const target of ["/", "/oidc/device", "/getproxy", "/.well-known/openid-configuration"]) {
        const res = await fetch(`http://localhost:${port}${target}`, { redirect: "manual" });
        assert.equal(res.headers.get("strict-transport-security"), "max-age=31536000", target);
      }
    } finally {
      await https.cleanup();
    }
  });
});

describe("display names", () => {
  test("the sanitiser: bidi and other hidden controls removed, white space folded, length capped; real scripts kept", () => {
    const table: [string, string][] = [
      ["Alice Example", "Alice Example"],
      [`Ali${RLO}ce`, "Ali ce"],
      ["a\u2066b\u2067c\u2068d\u2069e\u200Ef\u200Fg\u061Ch", "a b c d e f g h"],
      ["tab\there\nnew\u2028line\u0000nul\u007fdel", "tab here new line nul del"],
      ["\uFEFFbom\u00ADshy\u2060wj", "bom shy wj"],
      ["  spaced   out  ", "spaced out"],
      ["می\u200Cخواهم", "می\u200Cخواهم"], // ZWNJ is spelling in Persian
      ["👩\u200D💻 Zoë Ünlü", "👩\u200D💻 Zoë Ünlü"],
      ["Zoe\u0308", "Zoë"], // NFC
    ];
    for (const [input, expected] of table) assert.equal(displayText(input), expected, JSON.stringify(input));
    const long = displayText("é".repeat(500));
    assert.equal([...long].length, 100);
    assert.ok(long.endsWith("…"));
    assert.equal([...displayText("😀".repeat(150))].length, 100, "counted in code points, never splitting a surrogate pair");
  });

  test("a person's and a gateway's names reach the consent page, the console and the database without the controls", async () => {
    const flow = await loginThroughPortal(portal.url, { user: "mallory", gw: { id: "bidi-gateway", secret: "bidi-gateway-secret-0123456789abcdef", redirect: "http://localhost:9/bidi" }, scope: "openid profile proxy" });
    for (const html of [flow.consentHtml, flow.loginHtml]) {
      assert.equal(/[\u202A-\u202E\u2066-\u2069\u200B]/.test(html), false, "no bidi or hidden controls on the page");
    }
    assert.match(flow.consentHtml, /Good Gateway lanretxe/);
    assert.match(flow.consentHtml, /Mallory gnp\.exe Smith x+…/);
    const { page } = await consoleLogin(portal.url, "mallory");
    assert.equal(/[\u202A-\u202E\u2066-\u2069\u200B]/.test(page.html), false);
    assert.match(page.html, /Mallory gnp\.exe Smith x+…/);
    const db = await openDatabase(portal.env.DATABASE_URL ?? `file:${path.join(portal.dir, "certbridge.db")}`);
    try {
      const person = await db.identity.findFirst({ where: { sub: "mallory" }, select: { displayName: true } });
      assert.equal(person?.displayName, displayText(EVIL_NAME));
      assert.equal([...person!.displayName].length, 100);
      const gw = await db.gatewayClient.findUnique({ where: { id: "bidi-gateway" }, select: { name: true } });
      assert.equal(gw?.name, "Good Gateway lanretxe");
    } finally {
      await closeDatabase(db);
    }
    void Browser;
  });
});
