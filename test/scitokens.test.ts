/**
 * HTCondor-CE's relying party, for real: Debian's scitokens-cpp (scitokens-verify,
 * scitokens-test-access) checks pilot tokens from Certbridge the way HTCondor-CE does — issuer
 * metadata and keys fetched over https, `aud` against the CE's audience, and `condor:/WRITE`
 * only for compute.create + compute.modify + compute.cancel together.
 *
 * scitokens-cpp fetches keys over https only and trusts libcurl's compiled-in CA bundle
 * (/etc/ssl/certs/ca-certificates.crt; libcurl reads neither SSL_CERT_FILE nor CURL_CA_BUNDLE).
 * So the portal is served over TLS on loopback by a TLS-terminating proxy in this process, with a
 * throwaway test CA, and each scitokens command runs in its own mount namespace (unshare) where
 * that bundle path is the test CA: nothing on the machine changes. Its key cache lives in a
 * temporary XDG_CACHE_HOME.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { tempDir } from "./helpers";
import { freePort, startPortalServer, type PortalServer } from "./portalHarness";

const PILOTS = { id: "dirac-pilots", secret: "dirac-pilots-secret-0123456789abcdef" };
const CE = "ce.example.org:9619";
const SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

let portal: PortalServer;
let proxy: https.Server;
let issuer = "";
let dir = "";

function openssl(args: string[]) {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

/**
 * A scitokens-cpp command with the test CA as libcurl's bundle, in a private mount namespace.
 * Asynchronous: the TLS proxy it talks to runs in this process.
 */
function scitokens(cmd: string, args: string[]): Promise<{ status: number | null; out: string }> {
  const ns = process.getuid?.() === 0 ? ["--mount"] : ["--user", "--map-root-user", "--mount"];
  const child = spawn("unshare", [...ns, "sh", "-c", `mount --bind "$0" ${SYSTEM_BUNDLE} && exec "$@"`, path.join(dir, "ca.pem"), cmd, ...args], {
    env: { ...process.env, XDG_CACHE_HOME: path.join(dir, "cache") },
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60_000,
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.on("close", (status) => resolve({ status, out: out.trim() })));
}

async function pilotToken(scope: string, audience = CE): Promise<string> {
  const res = await fetch(`${portal.url}/oidc/token`, {
    method: "POST",
    headers: { authorization: `Basic ${Buffer.from(`${PILOTS.id}:${PILOTS.secret}`).toString("base64")}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", scope, audience }),
  });
  const body = (await res.json()) as { access_token?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.access_token!;
}

before(async () => {
  for (const tool of ["scitokens-verify", "scitokens-test-access", "unshare"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is missing: run scripts/setup.sh (Debian package scitokens-cpp)`);
  }
  dir = tempDir("certbridge-scitokens-");
  fs.mkdirSync(path.join(dir, "cache"));
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=Certbridge test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=localhost"]);
  fs.writeFileSync(path.join(dir, "ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl(["x509", "-req", "-in", "tls.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "tls.pem", "-days", "1", "-extfile", "ext"]);

  const tlsPort = await freePort();
  issuer = `https://localhost:${tlsPort}`;
  portal = await startPortalServer({ CERTBRIDGE_PUBLIC_URL: issuer }, [
    { id: PILOTS.id, name: "DIRAC Site Director", secret: PILOTS.secret, scopes: ["compute.read", "compute.modify", "compute.create", "compute.cancel"], tokenPolicy: { format: "wlcg", compute: true } },
  ]);
  // the TLS-terminating proxy in front of the portal (which trusts X-Forwarded-* for an https public URL)
  const target = new URL(portal.url);
  proxy = https.createServer({ key: fs.readFileSync(path.join(dir, "tls.key")), cert: fs.readFileSync(path.join(dir, "tls.pem")) }, (req, res) => {
    const up = http.request(
      { host: "127.0.0.1", port: target.port, method: req.method, path: req.url, headers: { ...req.headers, "x-forwarded-proto": "https", "x-forwarded-host": `localhost:${tlsPort}`, "x-forwarded-for": req.socket.remoteAddress ?? "" } },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on("error", () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => proxy.listen(tlsPort, "127.0.0.1", resolve));
});

after(async () => {
  await new Promise((r) => (proxy ? proxy.close(r) : r(undefined)));
  await portal?.cleanup();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe("scitokens-cpp (HTCondor-CE's library) accepts Certbridge pilot tokens", () => {
  test("the issuer's metadata is served over https with the public URL", async () => {
    const body = await new Promise<string>((resolve, reject) =>
      https
        .get(`${issuer}/.well-known/openid-configuration`, { ca: fs.readFileSync(path.join(dir, "ca.pem")) }, (res) => {
          let text = "";
          res.on("data", (c: Buffer) => (text += c.toString()));
          res.on("end", () => resolve(text));
        })
        .on("error", reject),
    );
    const d = JSON.parse(body) as { issuer: string; jwks_uri: string };
    assert.equal(d.issuer, issuer);
    assert.equal(d.jwks_uri, `${issuer}/oidc/jwks`);
  });

  test("scitokens-verify accepts a pilot token (WLCG profile)", async (t) => {
    const token = await pilotToken("compute.cancel compute.create compute.modify compute.read");
    const r = await scitokens("scitokens-verify", ["--profile", "wlcg", token]);
    assert.equal(r.status, 0, r.out);
    t.diagnostic(`scitokens-verify --profile wlcg: exit 0 ${r.out}`);
  });

  test("all of compute.create, compute.modify, compute.cancel: condor:/WRITE for the CE's audience", async (t) => {
    const token = await pilotToken("compute.cancel compute.create compute.modify compute.read");
    const write = await scitokens("scitokens-test-access", [token, issuer, CE, "condor", "/WRITE"]);
    assert.equal(write.status, 0, write.out);
    t.diagnostic(`condor:/WRITE at ${CE}: exit 0 ${write.out}`);
    const read = await scitokens("scitokens-test-access", [token, issuer, CE, "condor", "/READ"]);
    assert.equal(read.status, 0, read.out);
  });

  test("without compute.modify: READ, but no WRITE", async (t) => {
    const token = await pilotToken("compute.cancel compute.create compute.read");
    const write = await scitokens("scitokens-test-access", [token, issuer, CE, "condor", "/WRITE"]);
    assert.notEqual(write.status, 0, write.out);
    t.diagnostic(`without compute.modify, condor:/WRITE: ${write.out}`);
    const read = await scitokens("scitokens-test-access", [token, issuer, CE, "condor", "/READ"]);
    assert.equal(read.status, 0, read.out);
  });

  test("a token for another CE is refused", async (t) => {
    const token = await pilotToken("compute.cancel compute.create compute.modify compute.read", "other-ce.example.org:9619");
    const r = await scitokens("scitokens-test-access", [token, issuer, CE, "condor", "/WRITE"]);
    assert.notEqual(r.status, 0, r.out);
    t.diagnostic(`audience other-ce.example.org:9619 at ${CE}: ${r.out}`);
    // the same request with the token's own audience passes: the refusal is the audience
    assert.equal((await scitokens("scitokens-test-access", [token, issuer, "other-ce.example.org:9619", "condor", "/WRITE"])).status, 0);
  });
});
