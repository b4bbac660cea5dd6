/**
 * A MyProxy client and Debian's myproxy-server for the benchmarks (bench/myproxy.ts,
 * bench/throughput.ts): one retrieval the way myproxy-logon makes it, levels of them, and a real
 * myproxy-server on loopback with a stored credential to retrieve from.
 */
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import tls from "node:tls";
import { run } from "../../test/helpers";

/** One retrieval; resolves with the number of certificates received, rejects on any error. */
export function retrieve(port: number, request: Buffer, csr: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, minVersion: "TLSv1.2", maxVersion: "TLSv1.2" });
    let buf = Buffer.alloc(0);
    let stage = 0;
    let count = 0;
    const fail = (e: Error) => {
      socket.destroy();
      reject(e);
    };
    socket.on("error", fail);
    socket.on("secureConnect", () => {
      socket.setNoDelay(true);
      socket.write("0");
      socket.write(request);
    });
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (stage === 0 || stage === 2) {
          const nul = buf.indexOf(0);
          if (nul < 0) return;
          const text = buf.subarray(0, nul).toString("latin1");
          buf = buf.subarray(nul + 1);
          if (!/RESPONSE=0/.test(text)) return fail(new Error(text));
          if (stage === 2) {
            socket.end();
            return resolve(count);
          }
          stage = 1;
          socket.write(csr);
          continue;
        }
        // stage 1: the count byte, then that many DER certificates
        if (buf.length < 1) return;
        const n = buf[0]!;
        let off = 1;
        for (let i = 0; i < n; i++) {
          if (buf.length < off + 4) return;
          const len = buf[off + 1]! === 0x82 ? buf.readUInt16BE(off + 2) + 4 : buf[off + 1]! === 0x83 ? buf.readUIntBE(off + 2, 3) + 5 : buf[off + 1]! + 2;
          if (buf.length < off + len) return;
          off += len;
        }
        count = n;
        buf = buf.subarray(off);
        stage = 2;
      }
    });
  });
}

export interface Level {
  concurrency: number;
  n: number;
  rate: number;
  p50: number;
  p99: number;
  failures: number;
}

/** Retrievals at each level (concurrency, count) against one server, after 20 to warm up; `certs` is how many certificates a good answer carries. */
export async function measure(port: number, request: Buffer, csr: Buffer, certs: number, levels: { concurrency: number; n: number }[]): Promise<Level[]> {
  for (let i = 0; i < 20; i++) await retrieve(port, request, csr); // warm-up
  const out: Level[] = [];
  for (const { concurrency, n } of levels) {
    let next = 0;
    let failures = 0;
    const latencies: number[] = [];
    const start = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          next++;
          const t = performance.now();
          try {
            if ((await retrieve(port, request, csr)) !== certs) failures++;
          } catch (e) {
            failures++;
            if (failures === 1) console.log(`first failure: ${(e as Error).message.slice(0, 300)}`);
          }
          latencies.push(performance.now() - t);
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    latencies.sort((a, b) => a - b);
    const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
    out.push({ concurrency, n, rate: n / seconds, p50: q(0.5), p99: q(0.99), failures });
  }
  return out;
}

/**
 * Debian's myproxy-server on loopback, as a site runs it (a daemon that forks per connection),
 * with its own OpenSSL-made CA, host certificate and a user whose credential myproxy-init stored
 * under a passphrase: the same GET (CSR, 12 h) then retrieves a proxy of the stored one.
 */
export function startRealMyProxyServer(dir: string): { port: number; request: Buffer; certs: number; stop: () => void } {
  const ok = (r: ReturnType<typeof run>, what: string) => {
    if (r.status !== 0) throw new Error(`${what}: ${r.stderr}${r.stdout}`);
    return r;
  };
  const ca = path.join(dir, "ca");
  fs.mkdirSync(ca, { recursive: true });
  fs.writeFileSync(path.join(ca, "index.txt"), "");
  fs.writeFileSync(path.join(ca, "serial"), "1000\n");
  const cnf = path.join(dir, "ca.cnf");
  fs.writeFileSync(cnf, `[ca]\ndefault_ca = b\n[b]\ndir = ${ca}\ndatabase = $dir/index.txt\nserial = $dir/serial\nnew_certs_dir = $dir\ncertificate = $dir/ca.pem\nprivate_key = $dir/ca.key\ndefault_md = sha256\ndefault_days = 2\npolicy = any\n[any]\ndomainComponent = optional\ncommonName = supplied\n[leaf]\nbasicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature,keyEncipherment\n`);
  const base = "/DC=org/DC=myproxy-bench";
  ok(run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", `${base}/CN=Bench CA`, "-days", "2", "-keyout", path.join(ca, "ca.key"), "-out", path.join(ca, "ca.pem"), "-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]), "CA");
  const leaf = (name: string, subject: string) => {
    ok(run("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", path.join(dir, `${name}.key`), "-out", path.join(dir, `${name}.csr`)]), name);
    ok(run("openssl", ["ca", "-batch", "-config", cnf, "-extensions", "leaf", "-in", path.join(dir, `${name}.csr`), "-out", path.join(dir, `${name}.pem`), "-notext"]), name);
    fs.chmodSync(path.join(dir, `${name}.key`), 0o600);
  };
  leaf("host", `${base}/CN=localhost`);
  leaf("user", `${base}/CN=Bench User`);
  const certs = path.join(dir, "certificates");
  fs.mkdirSync(certs);
  const hash = ok(run("openssl", ["x509", "-hash", "-noout", "-in", path.join(ca, "ca.pem")]), "hash").stdout.trim();
  fs.copyFileSync(path.join(ca, "ca.pem"), path.join(certs, `${hash}.0`));
  fs.writeFileSync(path.join(certs, `${hash}.signing_policy`), `access_id_CA X509 '${base}/CN=Bench CA'\npos_rights globus CA:sign\ncond_subjects globus '"${base}/*"'\n`);
  const store = path.join(dir, "store");
  fs.mkdirSync(store, { mode: 0o700 });
  fs.writeFileSync(path.join(dir, "myproxy-server.config"), 'accepted_credentials "*"\nauthorized_retrievers "*"\ndefault_retrievers "*"\n');
  const env = { X509_CERT_DIR: certs, HOME: dir, MYPROXY_SERVER_DN: `${base}/CN=localhost` };
  // It daemonizes (fork per connection, as sites run it): no pipes it could keep open, a log file instead.
  const logFd = fs.openSync(path.join(dir, "myproxy-server.log"), "a");
  const started = spawnSync("myproxy-server", ["-c", path.join(dir, "myproxy-server.config"), "-s", store, "-l", "127.0.0.1", "-p", "0", "-z", path.join(dir, "port"), "-P", path.join(dir, "pid")], {
    env: { ...process.env, ...env, X509_USER_CERT: path.join(dir, "host.pem"), X509_USER_KEY: path.join(dir, "host.key") },
    stdio: ["ignore", logFd, logFd],
    timeout: 30_000,
  });
  fs.closeSync(logFd);
  if (started.status !== 0) throw new Error(`myproxy-server: ${fs.readFileSync(path.join(dir, "myproxy-server.log"), "utf8")}`);
  for (let i = 0; i < 100 && !fs.existsSync(path.join(dir, "port")); i++) spawnSync("sleep", ["0.05"]);
  const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8").trim();
  const port = Number(read("port"));
  const stop = () => {
    try {
      process.kill(Number(read("pid")), "SIGTERM");
    } catch {
      // already gone
    }
  };
  try {
    const passphrase = "bench-passphrase-0123";
    ok(
      run("myproxy-init", ["-s", "127.0.0.1", "-p", String(port), "-l", "benchuser", "-S", "-c", "24", "-t", "12"], {
        input: `${passphrase}\n`,
        env: { ...env, X509_USER_CERT: path.join(dir, "user.pem"), X509_USER_KEY: path.join(dir, "user.key") },
        timeoutMs: 60_000,
      }),
      "myproxy-init",
    );
    // Stored: a proxy of the user's grid-proxy-init proxy; a GET returns a proxy of it and the chain (4 certificates).
    const request = Buffer.from(`VERSION=MYPROXYv2\nCOMMAND=0\nUSERNAME=benchuser\nPASSPHRASE=${passphrase}\nLIFETIME=43200\n\0`, "latin1");
    return { port, request, certs: 4, stop };
  } catch (e) {
    stop();
    throw e;
  }
}

/** One level as a line of output. */
export const row = (l: Level) => `${String(l.concurrency).padStart(3)} concurrent  ${String(l.n).padStart(5)} retrievals  ${l.rate.toFixed(0).padStart(5)} /s   p50 ${l.p50.toFixed(1)} ms  p99 ${l.p99.toFixed(1)} ms   failures ${l.failures}`;

/** The installed myproxy-server's version ("6.2"), or "?". */
export function myproxyServerVersion(): string {
  return /\(v([\d.]+)/.exec(run("myproxy-server", ["-V"]).stdout)?.[1] ?? "?";
}
