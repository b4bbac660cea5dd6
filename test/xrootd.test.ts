/**
 * XRootD as a relying party, end to end: Debian's xrootd-server 5.5.3 with
 * GSI (trusting the exported trust directory, plus the CA of its own host
 * certificate), the VOMS extractor libXrdVoms in its default mode (grpopt=2:
 * every FQAN of the AC becomes a vo/group/role triplet) and an authdb that
 * grants /vo/biomed/ to VO biomed. Certbridge proxies with VO biomed read and
 * write there; proxies without it are refused.
 *
 * The extractor denies an AC that mixes the short FQAN form (/biomed) with
 * role-qualified ones ("Unable to validate entity; missing attrs"): that is
 * why ACs carry the VOMS long form (/biomed/Role=NULL/Capability=NULL).
 *
 * xrootd has no listen-address setting. To stay on loopback, a tiny perl
 * wrapper binds 127.0.0.1 on a port the kernel picks and execs xrootd with
 * that socket as fd 3 (systemd's LISTEN_FDS/LISTEN_PID protocol, which
 * Debian's build honours). As root, xrootd needs -R <user>: it then runs as
 * the package's user `xrootd`, which is given its working directory.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { startTestPortal, claimsFor, run, tempDir, type TestPortal } from "./helpers";
import { issueProxy } from "../lib/issuance/issueProxy";
import { vomsExtension, parseVomsRequests } from "../lib/voms/proxyExtension";
import { exportTrustDirectory } from "../lib/ca/trustBundle";
import { subjectHash } from "../lib/pki/trustdir";
import { certificateParts } from "../lib/pki/x509";
import { pemBlocks } from "../lib/pki/der";
import { writeFileAtomic } from "../lib/files";

/** Binds 127.0.0.1:0, puts the socket on fd 3, prints the port, execs its arguments plus "-p <port>". */
const LOOPBACK_WRAPPER = `
use strict; use Socket; use POSIX ();
$^F = 3; # fds up to 3 survive exec
socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1) or die "setsockopt: $!";
bind($s, pack_sockaddr_in(0, inet_aton("127.0.0.1"))) or die "bind: $!";
listen($s, 64) or die "listen: $!";
my ($port) = unpack_sockaddr_in(getsockname($s));
if (fileno($s) != 3) { POSIX::dup2(fileno($s), 3) or die "dup2: $!"; }
$ENV{LISTEN_FDS} = 1; $ENV{LISTEN_PID} = $$;
$| = 1; print "port $port\\n";
exec(@ARGV, "-p", $port) or die "exec: $!";
`;

const START_TIMEOUT_MS = 30_000;
const CLIENT_TIMEOUT_MS = 45_000;

let portal: TestPortal;
let work: string;
let server: ChildProcess | undefined;
let serverOutput = "";
let port = 0;
let clientCa: string;
let dataDir: string;
let logFile: string;
const proxies: Record<string, string> = {};

const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : "");

function chownTree(dir: string, uid: number, gid: number) {
  fs.chownSync(dir, uid, gid);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid);
    else fs.chownSync(p, uid, gid);
  }
}

/** A test CA (OpenSSL) and a host certificate for CN=localhost, as a site would have one. */
function hostCredentials(dir: string) {
  fs.mkdirSync(dir);
  const f = (n: string) => path.join(dir, n);
  const ok = (r: ReturnType<typeof run>) => assert.equal(r.status, 0, r.stderr);
  ok(run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "2", "-subj", "/DC=org/DC=xrootd-test/CN=XRootD Test Host CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
  ok(run("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f("hostkey.pem"), "-out", f("host.csr"), "-subj", "/DC=org/DC=xrootd-test/CN=localhost"]));
  fs.writeFileSync(f("host.ext"), "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n");
  ok(run("openssl", ["x509", "-req", "-in", f("host.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-set_serial", "2", "-days", "1", "-sha256", "-extfile", f("host.ext"), "-out", f("hostcert.pem")]));
  fs.chmodSync(f("hostkey.pem"), 0o400); // GSI refuses a key others can read
  const caPem = fs.readFileSync(f("ca.pem"), "utf8");
  return { cert: f("hostcert.pem"), key: f("hostkey.pem"), caPem, caFile: `${subjectHash(certificateParts(pemBlocks(caPem)[0]!.der).subject)}.0` };
}

function waitForStart(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let found = 0;
    const deadline = Date.now() + START_TIMEOUT_MS;
    const fail = (why: string) => {
      clearInterval(timer);
      reject(new Error(`xrootd did not start: ${why}\n${serverOutput}\n${log().split("\n").slice(-40).join("\n")}`));
    };
    const timer = setInterval(() => {
      found ||= Number(/^port (\d+)$/m.exec(serverOutput)?.[1] ?? 0);
      const text = log();
      if (found && /------ xrootd \S+ initialization completed/.test(text)) {
        clearInterval(timer);
        resolve(found);
      } else if (/initialization failed/.test(text)) fail("its configuration failed");
      else if (child.exitCode !== null || child.signalCode !== null) fail(`it exited (${child.exitCode ?? child.signalCode})`);
      else if (Date.now() > deadline) fail(`not ready after ${START_TIMEOUT_MS} ms`);
    }, 100);
  });
}

async function stopServer() {
  const child = server;
  server = undefined;
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      /* already gone */
    }
  };
  group("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, 5000)))]);
  clearTimeout(timer);
  if (child.exitCode === null && child.signalCode === null) {
    group("SIGKILL");
    await exited;
  }
}
// If the test process dies without running after(), don't leave a server behind.
function killOnExit() {
  try {
    if (server?.pid) process.kill(-server.pid, "SIGKILL");
  } catch {
    /* already gone */
  }
}
process.on("exit", killOnExit);

before(async () => {
  work = tempDir("certbridge-xrootd-");
  const vosFile = path.join(work, "vos.json");
  fs.writeFileSync(vosFile, JSON.stringify([
    { name: "biomed", host: "voms.test.example", port: 15000 },
    { name: "atlas", host: "voms.test.example", port: 15001 },
  ]));
  portal = await startTestPortal({ env: { CERTBRIDGE_VOS_FILE: vosFile } });

  // What a site installs from `certbridge ca bundle`: CA files and vomsdir/<vo>/<host>.lsc.
  const certdir = (await exportTrustDirectory(portal.cb, path.join(work, "certificates"))).directory;
  const host = hostCredentials(path.join(work, "host"));
  fs.writeFileSync(path.join(certdir, host.caFile), host.caPem); // the server checks its own chain too
  clientCa = path.join(work, "client-certificates");
  fs.mkdirSync(clientCa);
  fs.writeFileSync(path.join(clientCa, host.caFile), host.caPem);

  dataDir = path.join(work, "data");
  fs.mkdirSync(path.join(dataDir, "vo", "biomed"), { recursive: true });
  fs.mkdirSync(path.join(dataDir, "vo", "atlas"), { recursive: true });
  fs.writeFileSync(path.join(dataDir, "vo", "biomed", "hello.txt"), "hello biomed\n");
  for (const d of ["admin", "run"]) fs.mkdirSync(path.join(work, d));
  fs.writeFileSync(path.join(work, "authdb"), "o biomed /vo/biomed/ a\n");
  const config = path.join(work, "xrootd.cfg");
  fs.writeFileSync(config, [
    "all.export /vo",
    `oss.localroot ${dataDir}`,
    `all.adminpath ${path.join(work, "admin")}`,
    `all.pidpath ${path.join(work, "run")}`,
    "xrootd.seclib libXrdSec.so",
    // the VOMS extractor with no -vomsfunparms: its default mode (grpopt=2)
    `sec.protocol gsi -ca:1 -crl:1 -certdir:${certdir} -crldir:${certdir} -cert:${host.cert} -key:${host.key} -gmapopt:0 -vomsfun:libXrdVoms.so -vomsat:extract`,
    "sec.protbind * only gsi",
    "ofs.authorize 1",
    `acc.authdb ${path.join(work, "authdb")}`,
    "acc.audit deny grant",
    "",
  ].join("\n"));
  logFile = path.join(work, "xrootd.log");

  const root = process.getuid?.() === 0;
  if (root) {
    const id = (flag: string) => Number(run("id", [flag, "xrootd"]).stdout.trim());
    chownTree(work, id("-u"), id("-g"));
    fs.chmodSync(work, 0o755);
  }
  server = spawn("perl", ["-e", LOOPBACK_WRAPPER, "xrootd", ...(root ? ["-R", "xrootd"] : []), "-c", config, "-l", logFile], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, X509_CERT_DIR: certdir, X509_VOMS_DIR: path.join(certdir, "vomsdir") },
  });
  server.stdout!.on("data", (b: Buffer) => (serverOutput += b.toString()));
  server.stderr!.on("data", (b: Buffer) => (serverOutput += b.toString()));
  port = await waitForStart(server);

  // One person: biomed member, in biomed/lab1, with the role pilot; also in atlas.
  const claims = claimsFor("xrootd-alice", "Alice Example", {
    eduperson_entitlement: ["biomed", "biomed:lab1", "biomed:role=pilot", "atlas"].map((g) => `urn:mace:egi.eu:group:${g}#aai.egi.eu`),
  });
  for (const [name, requests] of [["role", ["biomed:/biomed/Role=pilot"]], ["groups", ["biomed"]], ["atlas", ["atlas"]], ["plain", []]] as const) {
    const p = await issueProxy(portal.cb, {
      claims,
      extension: requests.length ? vomsExtension(portal.cb.vos, parseVomsRequests([...requests]), portal.cb.clock) : undefined,
      actor: "test",
    });
    proxies[name] = path.join(portal.dir, `xrootd-${name}.pem`);
    writeFileAtomic(proxies[name], p.pem, 0o600);
  }
}, { timeout: 120_000 });

after(async () => {
  await stopServer();
  process.off("exit", killOnExit);
  await portal?.cleanup();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** xrdcp as a user with this proxy; never waits longer than CLIENT_TIMEOUT_MS. */
function xrdcp(proxy: string, from: string, to: string) {
  return run("xrdcp", ["--nopbar", from, to], {
    env: {
      X509_USER_PROXY: proxy,
      X509_CERT_DIR: clientCa,
      XrdSecGSISRVNAMES: "localhost", // accept CN=localhost at 127.0.0.1
      XRD_CONNECTIONRETRY: "1",
      XRD_CONNECTIONWINDOW: "10",
      XRD_REQUESTTIMEOUT: "20",
      XRD_STREAMTIMEOUT: "20",
    },
    timeoutMs: CLIENT_TIMEOUT_MS,
  });
}
const url = (p: string) => `root://localhost:${port}/${p}`;

describe("XRootD (GSI, VOMS extractor in its default mode, authdb: VO biomed owns /vo/biomed/)", () => {
  for (const [name, request] of [["role", "biomed:/biomed/Role=pilot"], ["groups", "biomed"]] as const) {
    test(`a proxy for ${request} reads and writes /vo/biomed/`, { timeout: 2 * CLIENT_TIMEOUT_MS + 30_000 }, () => {
      const got = path.join(work, `read-${name}.txt`);
      const read = xrdcp(proxies[name]!, url("/vo/biomed/hello.txt"), got);
      assert.equal(read.status, 0, `${read.stderr}\n${log().split("\n").slice(-20).join("\n")}`);
      assert.equal(fs.readFileSync(got, "utf8"), "hello biomed\n");

      const local = path.join(work, `upload-${name}.txt`);
      fs.writeFileSync(local, `written by the ${request} proxy\n`);
      const write = xrdcp(proxies[name]!, local, url(`/vo/biomed/from-${name}.txt`));
      assert.equal(write.status, 0, `${write.stderr}\n${log().split("\n").slice(-20).join("\n")}`);
      assert.equal(fs.readFileSync(path.join(dataDir, "vo", "biomed", `from-${name}.txt`), "utf8"), `written by the ${request} proxy\n`);

      // the server's own audit (acc.audit deny grant) agrees
      assert.match(log(), /grant gsi \S+ read \/vo\/biomed\/hello\.txt/);
      assert.match(log(), new RegExp(`grant gsi \\S+ create /vo/biomed/from-${name}\\.txt`));
      assert.doesNotMatch(log(), /missing attrs/);
    });
  }

  for (const [name, what] of [["plain", "no VOMS attributes"], ["atlas", "only VO atlas"]] as const) {
    test(`a proxy with ${what} can neither read nor write /vo/biomed/`, { timeout: 2 * CLIENT_TIMEOUT_MS + 30_000 }, () => {
      const read = xrdcp(proxies[name]!, url("/vo/biomed/hello.txt"), path.join(work, `denied-${name}.txt`));
      assert.notEqual(read.status, 0);
      assert.match(read.stderr, /\[3010\].*permission denied/i);
      const local = path.join(work, `upload-${name}.txt`);
      fs.writeFileSync(local, "should not arrive\n");
      const write = xrdcp(proxies[name]!, local, url(`/vo/biomed/from-${name}.txt`));
      assert.notEqual(write.status, 0);
      assert.match(write.stderr, /\[3010\].*permission denied/i);
      assert.equal(fs.existsSync(path.join(dataDir, "vo", "biomed", `from-${name}.txt`)), false);
      assert.match(log(), /deny gsi \S+ read \/vo\/biomed\/hello\.txt/);
      assert.match(log(), new RegExp(`deny gsi \\S+ (stat|create) /vo/biomed/from-${name}\\.txt`));
    });
  }
});
