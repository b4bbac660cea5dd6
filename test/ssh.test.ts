/**
 * `ssh proxy@portal > proxy.pem` with OpenSSH's own client against the
 * production server entry: keys registered on the account page or through
 * the gateway API log in and receive a proxy that Globus verifies; unknown
 * keys, passwords, shells, commands and forwarding are refused; a deleted key
 * stops working. Key parsing is table-tested against keys ssh-keygen made.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { spawnSync } from "node:child_process";
import path from "node:path";
import ssh2 from "ssh2";
import { openDatabase, type Db } from "../lib/db";
import { loadConfig } from "../lib/config";
import { parseSshPublicKey } from "../lib/ssh/keys";
import { parseSshArguments, sshSaveCommand } from "../lib/ssh/server";
import { decodeCertificate } from "../lib/inspect/certificate";
import { pemBlocks } from "../lib/pki/der";
import { run, tempDir, ROOT } from "./helpers";
import { startPortalServer, freePort, consoleLogin, loginThroughPortal, redeem, type PortalServer } from "./portalHarness";

let portal: PortalServer;
let db: Db;
let sshPort: number;
let keysDir: string;
let trust: string;

/** A key pair made by ssh-keygen; returns the private key path and the .pub line. */
function keygen(name: string, args: string[]): { file: string; pub: string } {
  const file = path.join(keysDir, name);
  const r = run("ssh-keygen", ["-q", "-N", "", "-C", `${name}@test`, "-f", file, ...args]);
  assert.equal(r.status, 0, r.stderr);
  return { file, pub: fs.readFileSync(`${file}.pub`, "utf8").trim() };
}

/** OpenSSH's client, non-interactive, trusting the test server's host key on first use. */
function ssh(keyFile: string | null, remote: string[] = [], extra: string[] = [], user = "proxy") {
  const out = path.join(keysDir, `out-${Math.random().toString(36).slice(2)}.pem`);
  const args = [
    "-p", String(sshPort),
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", `UserKnownHostsFile=${path.join(keysDir, "known_hosts")}`,
    "-o", "IdentitiesOnly=yes",
    "-o", "ConnectTimeout=10",
    "-F", "/dev/null",
    ...(keyFile ? ["-i", keyFile] : ["-o", "PubkeyAuthentication=no"]),
    ...extra,
    `${user}@localhost`,
    ...remote,
  ];
  // spawnSync, not run(): stderr matters on success too (a clamped lifetime, an AC ending early).
  const r = spawnSync("sh", ["-c", `ssh "$@" > ${out}`, "ssh", ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status ?? 1, stderr: r.stderr ?? "", stdout: fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "" };
}

const grid = (file: string) => {
  fs.chmodSync(file, 0o600);
  return run("grid-proxy-init", ["-verify", "-cert", file, "-key", file, "-certdir", trust, "-valid", "0:05", "-out", `${file}.derived`]);
};

before(async () => {
  keysDir = tempDir("certbridge-ssh-");
  sshPort = await freePort();
  portal = await startPortalServer({ CERTBRIDGE_SSH_PORT: String(sshPort) });
  db = await openDatabase(loadConfig(portal.env, () => {}).databaseUrl);
  trust = path.join(portal.dir, "trust");
  const bundle = run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), "ca", "bundle", "--out", trust], { env: portal.env });
  assert.equal(bundle.status, 0, bundle.stderr);
});
after(async () => {
  await db?.$disconnect();
  await portal?.cleanup();
  fs.rmSync(keysDir, { recursive: true, force: true });
});

describe("SSH public keys (table)", () => {
  test("ed25519, ECDSA P-256/384/521 and RSA ≥ 2048 are accepted with OpenSSH's fingerprint", () => {
    for (const [name, args, algorithm, bits] of [
      ["ed", ["-t", "ed25519"], "ssh-ed25519", 256],
      ["ec256", ["-t", "ecdsa", "-b", "256"], "ecdsa-sha2-nistp256", 256],
      ["ec384", ["-t", "ecdsa", "-b", "384"], "ecdsa-sha2-nistp384", 384],
      ["ec521", ["-t", "ecdsa", "-b", "521"], "ecdsa-sha2-nistp521", 521],
      ["rsa2048", ["-t", "rsa", "-b", "2048"], "ssh-rsa", 2048],
      ["rsa3072", ["-t", "rsa", "-b", "3072"], "ssh-rsa", 3072],
    ] as const) {
      const k = keygen(`t-${name}`, [...args]);
      const parsed = parseSshPublicKey(k.pub);
      assert.equal(parsed.algorithm, algorithm, name);
      assert.equal(parsed.bits, bits, name);
      assert.equal(parsed.comment, `t-${name}@test`);
      const fp = run("ssh-keygen", ["-l", "-E", "sha256", "-f", `${k.file}.pub`]).stdout.split(" ")[1];
      assert.equal(parsed.fingerprint, fp, name);
    }
  });

  test("weak, foreign and malformed keys are refused, each with its own reason", () => {
    const rsa1024 = keygen("t-rsa1024", ["-t", "rsa", "-b", "1024"]).pub;
    const dsa = keygen("t-dsa", ["-t", "dsa"]).pub;
    const ed = keygen("t-ed-bad", ["-t", "ed25519"]);
    const [type, b64] = ed.pub.split(" ") as [string, string];
    const blob = Buffer.from(b64, "base64");
    const cases: [string, RegExp][] = [
      [rsa1024, /at least 2048 bits; this one has 1024/],
      [dsa, /DSA keys are refused/],
      [fs.readFileSync(ed.file, "utf8"), /private key/],
      [`ssh-ed25519-cert-v01@openssh.com ${b64}`, /certificates are not accepted/],
      [`sk-ssh-ed25519@openssh.com ${b64}`, /security-key/],
      [`ssh-foo ${b64}`, /ssh-foo is not accepted/],
      [`${type} ${blob.subarray(0, blob.length - 5).toString("base64")}`, /truncated or corrupt/],
      [`ecdsa-sha2-nistp256 ${b64}`, /says "ssh-ed25519", not ecdsa-sha2-nistp256/],
      [`${ed.pub}\n${rsa1024}`, /one SSH public key/],
      ["", /paste an SSH public key/],
      ["hello world", /key type hello is not accepted/],
      ["ssh-ed25519 !!!notbase64", /not an SSH public key/],
      ["x".repeat(20_000), /too long/],
    ];
    for (const [text, reason] of cases) {
      assert.throws(() => parseSshPublicKey(text), (e: { code?: string; message: string }) => e.code === "invalid_request" && reason.test(e.message), reason.source);
    }
  });

  test("session arguments are key=value words only (table)", () => {
    assert.deepEqual(parseSshArguments(""), { action: "proxy", voms: [], lifetimeSeconds: undefined });
    assert.deepEqual(parseSshArguments("voms=biomed lifetime=12h"), { action: "proxy", voms: ["biomed"], lifetimeSeconds: 43200 });
    assert.deepEqual(parseSshArguments(" voms=biomed:/biomed/Role=pilot  voms=atlas lifetime=01:30"), { action: "proxy", voms: ["biomed:/biomed/Role=pilot", "atlas"], lifetimeSeconds: 5400 });
    for (const [bad, reason] of [["sh", /unknown argument "sh"/], ["/bin/bash -i", /unknown argument/], ["lifetime=soon", /lifetime: "soon" is not a duration/], ["lifetime=1h lifetime=2h", /twice/], ["scp -t /tmp", /only issues proxies/]] as const) {
      assert.throws(() => parseSshArguments(bad), (e: Error) => reason.test(e.message), bad);
    }
  });
});

describe("ssh proxy@portal with OpenSSH", () => {
  let ed: { file: string; pub: string };
  let alice: Awaited<ReturnType<typeof consoleLogin>>;

  before(async () => {
    ed = keygen("alice-ed25519", ["-t", "ed25519"]);
    alice = await consoleLogin(portal.url, "alice", "/account");
    const page = await alice.browser.submit(alice.page, /\/account\/ssh-keys$/, { csrf: alice.csrf!, public_key: ed.pub, label: "laptop" });
    assert.match(page.html, /SSH key &quot;laptop&quot; \(SHA256:[^)]+\) added/);
  });

  test("a registered key receives a proxy that Globus verifies; the issuance is audited with the key's fingerprint", () => {
    const r = ssh(ed.file);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(pemBlocks(r.stdout).map((b) => b.label), ["CERTIFICATE", "PRIVATE KEY", "CERTIFICATE"]);
    const file = path.join(keysDir, "proxy.pem");
    fs.writeFileSync(file, r.stdout, { mode: 0o600 });
    const v = grid(file);
    assert.equal(v.status, 0, v.stderr + v.stdout);
    assert.match(v.stdout, /Proxy Verify OK/);
    const info = run("grid-proxy-info", ["-f", file, "-identity"]);
    assert.match(info.stdout, /\/CN=Alice Example /);
  });

  test("arguments choose VO and lifetime; a VO the person is not in is refused on stderr with exit 1", async () => {
    const r = ssh(ed.file, ["voms=biomed", "lifetime=2h"]);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /warning/, "the AC (12 h cap) covers a 2 h proxy");
    // biomed caps its AC at 12 h (examples/vos.json): a 24 h proxy is issued, and stderr says when the attributes end.
    const long = ssh(ed.file, ["voms=biomed", "lifetime=24h"]);
    assert.equal(long.status, 0, long.stderr);
    assert.match(long.stderr, /certbridge: warning: the VOMS attributes of biomed end at \S+, before the proxy \(\S+\): the VO's maximum AC lifetime is 12h/);
    const longCert = decodeCertificate(pemBlocks(long.stdout)[0]!.der);
    assert.ok(longCert.attributeCertificates[0]!.notAfter.getTime() < longCert.notAfter.getTime() - 11 * 3600_000);
    const cert = decodeCertificate(pemBlocks(r.stdout)[0]!.der);
    assert.equal(Math.round((cert.notAfter.getTime() - cert.notBefore.getTime()) / 1000), 2 * 3600 + 300);
    // voms=biomed: the groups; a role only when asked for (voms=biomed:/biomed/Role=pilot), then first
    assert.deepEqual(cert.attributeCertificates[0]!.fqans, ["/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"]);
    const role = ssh(ed.file, ["voms=biomed:/biomed/Role=pilot"]);
    assert.equal(role.status, 0, role.stderr);
    assert.deepEqual(decodeCertificate(pemBlocks(role.stdout)[0]!.der).attributeCertificates[0]!.fqans, ["/biomed/Role=pilot/Capability=NULL", "/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"]);
    const refused = ssh(ed.file, ["voms=atlas"]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /certbridge: you are not a member of VO atlas/);
    assert.equal(refused.stdout, "");
    const fp = parseSshPublicKey(ed.pub).fingerprint;
    const issued = await db.auditEvent.findMany({ where: { action: "proxy.issue", details: { contains: fp } }, select: { details: true, actor: true } });
    assert.ok(issued.length >= 2);
    assert.ok(issued.every((e) => /"channel":"ssh"/.test(e.details) && /^user:/.test(e.actor)));
    assert.equal(await db.auditEvent.count({ where: { action: "proxy.refuse", details: { contains: fp } } }), 1);
  });

  test("unknown keys, other user names, no key at all and passwords are refused", async () => {
    const stranger = keygen("stranger", ["-t", "ed25519"]);
    for (const r of [ssh(stranger.file), ssh(ed.file, [], [], "root"), ssh(null)]) {
      assert.equal(r.status, 255);
      assert.match(r.stderr, /Permission denied \(publickey\)/);
      assert.equal(r.stdout, "");
    }
    // password and keyboard-interactive, as a client that insists (OpenSSH would not even try: only publickey is offered)
    for (const method of ["password", "keyboard-interactive"] as const) {
      const error = await new Promise<Error>((resolve) => {
        const c = new ssh2.Client();
        c.on("ready", () => {
          c.end();
          resolve(new Error("logged in"));
        });
        c.on("error", resolve);
        c.on("keyboard-interactive", (_name, _instructions, _lang, _prompts, finish) => finish(["hunter2"]));
        c.connect({ host: "localhost", port: sshPort, username: "proxy", ...(method === "password" ? { password: "hunter2" } : { tryKeyboard: true }) });
      });
      assert.match(error.message, /All configured authentication methods failed/, method);
    }
  });

  test("the account page's command saves a proxy with mode 0600, even over a 0644 file and with umask 022", async () => {
    const page = await alice.browser.go(`${portal.url}/account`);
    const file = path.join(keysDir, "x509up_hint");
    const shown = sshSaveCommand("localhost", sshPort);
    assert.ok(page.html.includes(shown.replace(/&/g, "&amp;").replace(/>/g, "&gt;").replace(/</g, "&lt;")), "the account page shows the command");
    fs.writeFileSync(file, "an older proxy\n", { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    // The page's command as shown, with only the test's client options and output file added.
    const options = `-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=${path.join(keysDir, "known_hosts")} -o IdentitiesOnly=yes -F /dev/null -i ${ed.file}`;
    const script = `umask 022; ssh() { command ssh ${options} "$@"; }; ${sshSaveCommand("localhost", sshPort, "", file)}`;
    const r = run("sh", ["-c", script]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(pemBlocks(fs.readFileSync(file, "utf8")).map((b) => b.label), ["CERTIFICATE", "PRIVATE KEY", "CERTIFICATE"]);
    assert.equal(grid(file).status, 0);
  });

  test("a session with a terminal (ssh -tt) gets a one-line refusal on stderr and no key", async () => {
    const before = await db.auditEvent.count({ where: { action: "proxy.issue" } });
    const r = ssh(ed.file, [], ["-tt"]);
    assert.equal(r.status, 1, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /PRIVATE KEY|BEGIN CERTIFICATE/);
    const refusal = r.stderr.split(/\r?\n/).filter((l) => l.startsWith("certbridge:"));
    assert.equal(refusal.length, 1, r.stderr);
    assert.match(refusal[0]!, /redirect the output to a file/);
    const withCommand = ssh(ed.file, ["voms=biomed"], ["-tt"]);
    assert.equal(withCommand.status, 1);
    assert.doesNotMatch(withCommand.stdout, /PRIVATE KEY/);
    assert.equal(await db.auditEvent.count({ where: { action: "proxy.issue" } }), before, "nothing was issued");
  });

  test("commands, subsystems and port forwarding are refused", () => {
    const sh = ssh(ed.file, ["sh", "-c", "id"]);
    assert.equal(sh.status, 1);
    assert.match(sh.stderr, /only issues proxies; unknown argument "sh"/);
    assert.equal(sh.stdout, "");
    const sftp = ssh(ed.file, [], ["-s"], "proxy");
    assert.notEqual(sftp.status, 0);
    const forward = ssh(ed.file, [], ["-o", "ExitOnForwardFailure=yes", "-R", "0:localhost:9", "-N"]);
    assert.equal(forward.status, 255);
    assert.match(forward.stderr, /remote port forwarding failed/);
  });

  test("a deleted key stops working at once", async () => {
    const spare = keygen("alice-spare", ["-t", "ecdsa"]);
    await alice.browser.submit(await alice.browser.go(`${portal.url}/account`), /\/account\/ssh-keys$/, { csrf: alice.csrf!, public_key: spare.pub, label: "spare" });
    assert.equal(ssh(spare.file).status, 0);
    const page = await alice.browser.go(`${portal.url}/account`);
    const id = new RegExp(`<td data-label="Label">spare</td>[\\s\\S]*?action="/account/ssh-keys/([^"]+)"`).exec(page.html)![1]!;
    const deleted = await alice.browser.submit(page, new RegExp(`/account/ssh-keys/${id}$`), { csrf: alice.csrf! });
    assert.match(deleted.html, /SSH key deleted/);
    const r = ssh(spare.file);
    assert.equal(r.status, 255);
    assert.match(r.stderr, /Permission denied \(publickey\)/);
    assert.equal(await db.auditEvent.count({ where: { action: "sshkey.delete" } }), 1);
  });

  test("a key belongs to one person only; refused keys change nothing", async () => {
    const bob = await consoleLogin(portal.url, "bob", "/account");
    const dup = await bob.browser.submit(bob.page, /\/account\/ssh-keys$/, { csrf: bob.csrf!, public_key: ed.pub });
    assert.match(dup.html, /already registered; each key can belong to one person only/);
    const weak = await bob.browser.submit(bob.page, /\/account\/ssh-keys$/, { csrf: bob.csrf!, public_key: keygen("bob-weak", ["-t", "rsa", "-b", "1024"]).pub });
    assert.match(weak.html, /at least 2048 bits/);
    assert.equal(await db.sshKey.count({ where: { identity: { sub: "bob" } } }), 0);
    // and nobody can delete someone else's key
    const aliceKey = (await db.sshKey.findFirst({ where: { identity: { sub: "alice" } }, select: { id: true } }))!;
    const foreign = await bob.browser.submit(bob.page, /\/account\/ssh-keys$/, { csrf: bob.csrf!, public_key: "" }).then(() =>
      bob.browser.go(`${portal.url}/account/ssh-keys/${aliceKey.id}`, { method: "POST", form: { csrf: bob.csrf! } }),
    );
    assert.match(foreign.html, /no such SSH key/);
    assert.ok(await db.sshKey.findUnique({ where: { id: aliceKey.id } }));
  });

  test("gateways register keys for a person with that person's access token", async () => {
    const tokens = await redeem(await loginThroughPortal(portal.url, { user: "zoe" }));
    const api = (method: string, p = "", body?: unknown, token: string | null = tokens.access_token) =>
      fetch(`${portal.url}/api/ssh-keys${p}`, { method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const zoeKey = keygen("zoe-rsa", ["-t", "rsa", "-b", "2048"]);
    assert.equal((await api("GET", "", undefined, null)).status, 401);
    const bad = await api("POST", "", { publicKey: "ssh-dss AAAA" });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: string }).error, "invalid_request");
    const created = await api("POST", "", { publicKey: zoeKey.pub, label: "cluster" });
    assert.equal(created.status, 201);
    const key = (await created.json()) as { id: string; fingerprint: string; label: string };
    assert.equal(key.label, "cluster");
    assert.equal((await api("POST", "", { publicKey: zoeKey.pub })).status, 409);
    const list = (await (await api("GET")).json()) as { keys: { fingerprint: string }[] };
    assert.deepEqual(list.keys.map((k) => k.fingerprint), [key.fingerprint]);
    assert.equal(ssh(zoeKey.file).status, 0);
    const event = await db.auditEvent.findFirst({ where: { action: "sshkey.add", details: { contains: key.fingerprint } } });
    assert.equal(event!.actor, "client:test-gateway");
    assert.equal((await api("DELETE", `/${key.id}`)).status, 204);
    assert.equal((await api("DELETE", `/${key.id}`)).status, 404);
    assert.equal(ssh(zoeKey.file).status, 255);
  });
});
