/**
 * MyProxy GET over the protocol against the production server entry, printed, never asserted.
 *
 *   node --import tsx bench/myproxy.ts          (needs `npx next build` first)
 *
 * The portal runs as a child process (test/portalHarness.ts) with the MyProxy
 * listener on a free port. One OAuth login gives an access token, OpenSSL one
 * CSR; each retrieval is what myproxy-logon does on a fresh connection: TLS 1.2
 * handshake, "0", the request (USERNAME = DN, PASSPHRASE = token), OK, the DER
 * CSR, the certificates, the final OK. Driven at 1, 8 and 32 concurrent clients.
 * BENCH_REQUESTS="100,400,800" sets the requests per level.
 */
import fs from "node:fs";
import tls from "node:tls";
import { opensslCsr, tempDir } from "../test/helpers";
import { pemBlocks } from "../lib/pki/der";
import { freePort, startPortalServer, loginThroughPortal, redeem } from "../test/portalHarness";

const LEVELS = [1, 8, 32];
const REQUESTS = (process.env.BENCH_REQUESTS ?? "100,400,800").split(",").map(Number);

/** One retrieval; resolves with the number of certificates received, rejects on any error. */
function retrieve(port: number, request: Buffer, csr: Buffer): Promise<number> {
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

async function main() {
  const dir = tempDir("certbridge-bench-myproxy-");
  const port = await freePort();
  const portal = await startPortalServer({ CERTBRIDGE_MYPROXY_PORT: String(port) });
  try {
    const token = (await redeem(await loginThroughPortal(portal.url))).access_token;
    const info = await fetch(`${portal.url}/getproxy?info=1`, { headers: { authorization: `Bearer ${token}` } });
    const dn = ((await info.json()) as { username: string }).username;
    const csr = Buffer.from(pemBlocks(opensslCsr(dir).csrPem)[0]!.der);
    const request = Buffer.from(`VERSION=MYPROXYv2\nCOMMAND=0\nUSERNAME=${dn}\nPASSPHRASE=${token}\nLIFETIME=43200\n\0`, "latin1");
    for (let i = 0; i < 20; i++) await retrieve(port, request, csr); // warm-up
    console.log(`MyProxy GET (fresh TLS 1.2 connection per retrieval, CSR mode), ${portal.env.DATABASE_URL?.startsWith("postgres") ? "PostgreSQL" : "SQLite"}, one process`);
    for (const [i, concurrency] of LEVELS.entries()) {
      const n = REQUESTS[i] ?? 100;
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
              if ((await retrieve(port, request, csr)) !== 2) failures++;
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
      const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1);
      console.log(`${String(concurrency).padStart(3)} concurrent  ${String(n).padStart(5)} retrievals  ${(n / seconds).toFixed(0).padStart(5)} /s   p50 ${q(0.5)} ms  p99 ${q(0.99)} ms   failures ${failures}`);
    }
  } finally {
    await portal.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
