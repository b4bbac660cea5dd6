/**
 * Issue 14, point 4: the MasterPortal's SSH dialect with OpenSSH's own client
 * (`time=HOURS`, `info`, `help`, a clamped lifetime reported on stderr,
 * `ssh … time=24 > proxy.pem` giving a proxy), and the MasterPortal's
 * `/sshkey` API (add, get, list, remove with the person's access token),
 * against the production server entry.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { openDatabase, type Db } from "../lib/db";
import { loadConfig } from "../lib/config";
import { parseSshArguments } from "../lib/ssh/server";
import { decodeCertificate } from "../lib/inspect/certificate";
import { pemBlocks } from "../lib/pki/der";
import { run, tempDir, ROOT } from "./helpers";
import { startPortalServer, freePort, loginThroughPortal, redeem, GATEWAY, OTHER_GATEWAY, type PortalServer } from "./portalHarness";

let portal: PortalServer;
let db: Db;
let sshPort: number;
let keysDir: string;
let trust: string;
let token: string;

function keygen(name: string): { file: string; pub: string } {
  const file = path.join(keysDir, name);
  const r = run("ssh-keygen", ["-q", "-N", "", "-t", "ed25519", "-C", `${name}@test`, "-f", file]);
  assert.equal(r.status, 0, r.stderr);
  return { file, pub: fs.readFileSync(`${file}.pub`, "utf8").trim() };
}

/** `ssh -T proxy@localhost WORDS > file`, as a person types it. */
function ssh(keyFile: string, remote: string[] = []) {
  const out = path.join(keysDir, `out-${Math.random().toString(36).slice(2)}.pem`);
  const args = ["-T", "-p", String(sshPort), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", `UserKnownHostsFile=${path.join(keysDir, "known_hosts")}`, "-o", "IdentitiesOnly=yes", "-F", "/dev/null", "-i", keyFile, "proxy@localhost", ...remote];
  // spawnSync, not run(): stderr is wanted on success too (the clamped-lifetime note)
  const r = spawnSync("sh", ["-c", `ssh "$@" > ${out}`, "ssh", ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stderr: r.stderr.replace(/^Warning: Permanently added.*\n/m, ""), stdout: fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "", file: out };
}

/** The MasterPortal's /sshkey call: GET with the parameters in the query, or POST form; the token as Bearer or access_token. */
function sshkey(params: Record<string, string>, init: { method?: "GET" | "POST"; bearer?: string | null } = {}) {
  const method = init.method ?? "POST";
  const headers: Record<string, string> = init.bearer === null ? {} : { authorization: `Bearer ${init.bearer ?? token}` };
  const q = new URLSearchParams(params);
  return method === "GET" ? fetch(`${portal.url}/sshkey?${q}`, { headers }) : fetch(`${portal.url}/sshkey`, { method, headers, body: q });
}

before(async () => {
  keysDir = tempDir("certbridge-mpssh-");
  sshPort = await freePort();
  portal = await startPortalServer({ CERTBRIDGE_SSH_PORT: String(sshPort), CERTBRIDGE_PROXY_MAX_LIFETIME: "12h", CERTBRIDGE_PROXY_DEFAULT_LIFETIME: "6h" });
  db = await openDatabase(loadConfig(portal.env, () => {}).databaseUrl);
  trust = path.join(portal.dir, "trust");
  assert.equal(run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), "ca", "bundle", "--out", trust], { env: portal.env }).status, 0);
  token = (await redeem(await loginThroughPortal(portal.url))).access_token;
});
after(async () => {
  await db?.$disconnect();
  await portal?.cleanup();
  fs.rmSync(keysDir, { recursive: true, force: true });
});

describe("the MasterPortal SSH words (table)", () => {
  test("time=HOURS, info and help parse; bad words are refused with a reason", () => {
    assert.deepEqual(parseSshArguments("time=24"), { action: "proxy", voms: [], lifetimeSeconds: 86400 });
    assert.deepEqual(parseSshArguments("voms=biomed time=0.5"), { action: "proxy", voms: ["biomed"], lifetimeSeconds: 1800 });
    assert.equal(parseSshArguments("info").action, "info");
    assert.equal(parseSshArguments("help").action, "help");
    assert.equal(parseSshArguments("time=2 help").action, "help");
    for (const [bad, reason] of [["time=soon", /time: give a number of hours/], ["time=0", /at least one minute/], ["time=1 lifetime=2h", /twice/], ["info voms=biomed", /info takes no other arguments/], ["time=-3", /number of hours/]] as const) {
      assert.throws(() => parseSshArguments(bad), (e: Error) => reason.test(e.message), bad);
    }
  });
});

describe("/sshkey (the MasterPortal SSH-key API)", () => {
  let key: { file: string; pub: string };
  before(() => {
    key = keygen("mp-ed25519");
  });

  test("add without a label gets ssh-key-1; list and get show label, username (the DN) and pub_key; audited", async () => {
    const add = await sshkey({ action: "add", pubkey: key.pub, client_id: GATEWAY.id });
    assert.equal(add.status, 200, await add.clone().text());
    const list = await sshkey({ action: "list" }, { method: "GET" });
    assert.equal(list.status, 200);
    const body = (await list.json()) as { ssh_keys: { label: string; username: string; pub_key: string }[] };
    assert.equal(body.ssh_keys.length, 1);
    assert.equal(body.ssh_keys[0]!.label, "ssh-key-1");
    assert.match(body.ssh_keys[0]!.username, /^\/.*\/CN=Alice Example/);
    assert.equal(body.ssh_keys[0]!.pub_key, key.pub.split(" ").slice(0, 2).join(" "));
    const get = await sshkey({ action: "get", label: "ssh-key-1", access_token: token }, { method: "GET", bearer: null });
    assert.equal(get.status, 200, await get.clone().text());
    assert.equal(await db.auditEvent.count({ where: { action: "sshkey.add", clientId: GATEWAY.id } }), 1);
  });

  test("refusals: no action 400, unknown action 400, no token 401, another client's id 400, a label taken 409, an unknown label 404", async () => {
    const expect = async (res: Response, status: number, error: string) => {
      const b = (await res.json()) as { error: string };
      assert.equal(res.status, status, JSON.stringify(b));
      assert.equal(b.error, error);
    };
    await expect(await sshkey({ label: "x" }), 400, "invalid_request");
    await expect(await sshkey({ action: "update", label: "ssh-key-1" }), 400, "invalid_request");
    await expect(await sshkey({ action: "list" }, { bearer: null }), 401, "invalid_token");
    await expect(await sshkey({ action: "list", client_id: OTHER_GATEWAY.id }), 400, "invalid_request");
    const other = keygen("mp-other");
    await expect(await sshkey({ action: "add", pubkey: other.pub, label: "ssh-key-1" }), 409, "conflict");
    await expect(await sshkey({ action: "remove", label: "nope" }), 404, "not_found");
    await expect(await sshkey({ action: "add", pubkey: "ssh-ed25519 AAAA" }), 400, "invalid_request");
  });

  describe("ssh proxy@portal in the MasterPortal dialect", () => {
    test("help prints the words on stdout and exits 0", () => {
      const r = ssh(key.file, ["help"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /time=<hours>/);
      assert.match(r.stdout, /info/);
      assert.doesNotMatch(r.stdout, /BEGIN/);
    });

    test("info prints the subject and the time left, and issues nothing", async () => {
      const before = await db.certificate.count({ where: { kind: "proxy" } });
      const r = ssh(key.file, ["info"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^username: \/.*\/CN=Alice Example/m);
      assert.match(r.stdout, /timeleft: 12:00:00 {2}\(0\.5 days\)/);
      assert.equal(await db.certificate.count({ where: { kind: "proxy" } }), before);
    });

    test("ssh … time=24 > proxy.pem gives a proxy clamped to the 12 h maximum, said on stderr; Globus verifies it", () => {
      const r = ssh(key.file, ["time=24"]);
      assert.equal(r.status, 0, r.stderr);
      const blocks = pemBlocks(r.stdout);
      assert.deepEqual(blocks.map((b) => b.label), ["CERTIFICATE", "PRIVATE KEY", "CERTIFICATE"]);
      const cert = decodeCertificate(blocks[0]!.der);
      assert.equal(Math.round((cert.notAfter.getTime() - cert.notBefore.getTime()) / 1000), 12 * 3600 + 300);
      assert.match(r.stderr, /requested lifetime 1d exceeds the portal's maximum: the proxy is valid for 12h/);
      fs.chmodSync(r.file, 0o600);
      const v = run("grid-proxy-init", ["-verify", "-cert", r.file, "-key", r.file, "-certdir", trust, "-valid", "0:05", "-out", `${r.file}.derived`]);
      assert.equal(v.status, 0, v.stderr + v.stdout);
    });

    test("time=2 within the maximum: exactly two hours, nothing on stderr", () => {
      const r = ssh(key.file, ["time=2"]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, "");
      const cert = decodeCertificate(pemBlocks(r.stdout)[0]!.der);
      assert.equal(Math.round((cert.notAfter.getTime() - cert.notBefore.getTime()) / 1000), 2 * 3600 + 300);
    });

    test("remove through /sshkey: the key no longer logs in", async () => {
      const res = await sshkey({ action: "remove", label: "ssh-key-1" }, { method: "GET" });
      assert.equal(res.status, 200, await res.clone().text());
      const list = (await (await sshkey({ action: "list" })).json()) as { ssh_keys: unknown[] };
      assert.deepEqual(list.ssh_keys, []);
      const r = ssh(key.file, ["info"]);
      assert.equal(r.status, 255);
      assert.match(r.stderr, /Permission denied/);
    });
  });
});
