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
 * Then the same retrievals against Debian's myproxy-server (package myproxy-server) on loopback,
 * started here with its own OpenSSL-made CA and a credential stored with myproxy-init; both
 * rates and their ratio are printed.
 * BENCH_REQUESTS="100,400,800" sets the requests per level.
 */
import fs from "node:fs";
import path from "node:path";
import { opensslCsr, tempDir } from "../test/helpers";
import { pemBlocks } from "../lib/pki/der";
import { freePort, startPortalServer, loginThroughPortal, redeem } from "../test/portalHarness";
import { measure, myproxyServerVersion, row, startRealMyProxyServer } from "./lib/myproxyServer";

const LEVELS = [1, 8, 32];
const REQUESTS = (process.env.BENCH_REQUESTS ?? "100,400,800").split(",").map(Number);
const levels = LEVELS.map((concurrency, i) => ({ concurrency, n: REQUESTS[i] ?? 100 }));

async function main() {
  const dir = tempDir("certbridge-bench-myproxy-");
  const port = await freePort();
  const portal = await startPortalServer({ CERTBRIDGE_MYPROXY_PORT: String(port) });
  let real: ReturnType<typeof startRealMyProxyServer> | null = null;
  try {
    const token = (await redeem(await loginThroughPortal(portal.url))).access_token;
    const info = await fetch(`${portal.url}/getproxy?info=1`, { headers: { authorization: `Bearer ${token}` } });
    const dn = ((await info.json()) as { username: string }).username;
    const csr = Buffer.from(pemBlocks(opensslCsr(dir).csrPem)[0]!.der);
    const request = Buffer.from(`VERSION=MYPROXYv2\nCOMMAND=0\nUSERNAME=${dn}\nPASSPHRASE=${token}\nLIFETIME=43200\n\0`, "latin1");
    const ours = await measure(port, request, csr, 2, levels);
    console.log(`Certbridge MyProxy GET (fresh TLS 1.2 connection per retrieval, CSR mode, 12 h), ${portal.env.DATABASE_URL?.startsWith("postgres") ? "PostgreSQL" : "SQLite"}, one process`);
    for (const l of ours) console.log(row(l));
    real = startRealMyProxyServer(fs.mkdtempSync(path.join(dir, "real-")));
    const theirs = await measure(real.port, real.request, csr, real.certs, levels);
    const version = myproxyServerVersion();
    console.log(`Debian myproxy-server ${version} on loopback (a stored credential, passphrase, the same GET and CSR; forks per connection)`);
    for (const l of theirs) console.log(row(l));
    console.log("ratio Certbridge / myproxy-server (retrievals per second)");
    for (const [i, l] of ours.entries()) console.log(`${String(l.concurrency).padStart(3)} concurrent  ${(l.rate / theirs[i]!.rate).toFixed(2)}x`);
  } finally {
    real?.stop();
    await portal.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
