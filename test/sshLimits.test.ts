/**
 * The SSH listener's limits, over real TCP with the ssh2 client library: a
 * peer that never sends its identification string is closed after the
 * handshake deadline (one that finished its key exchange is not), one
 * connection cannot try more than CERTBRIDGE_SSH_MAX_AUTH_TRIES keys or
 * passwords, and connections are capped per IP and overall.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import ssh2 from "ssh2";
import { startSshServer, type SshService } from "../lib/ssh/server";
import { startMyProxyServer, type MyProxyService } from "../lib/myproxy/server";
import { myproxyRenewer } from "../lib/authority/provisioners/myproxyRenewer";
import { myproxyToken } from "../lib/authority/provisioners/myproxyToken";
import { createProvider } from "../lib/oidc/provider";
import { metrics } from "../lib/metrics";
import { startTestPortal, type TestPortal } from "./helpers";
import { freePort } from "./portalHarness";

const { Client, utils } = ssh2;

let portal: TestPortal;
let ssh: SshService;
let myproxy: MyProxyService;
const HANDSHAKE_SECONDS = 2;

before(async () => {
  portal = await startTestPortal({
    env: {
      CERTBRIDGE_SSH_PORT: String(await freePort()),
      CERTBRIDGE_SSH_LISTEN_HOST: "127.0.0.1",
      CERTBRIDGE_SSH_HANDSHAKE_TIMEOUT: `${HANDSHAKE_SECONDS}s`,
      CERTBRIDGE_SSH_MAX_AUTH_TRIES: "3",
      CERTBRIDGE_SSH_MAX_CONNECTIONS_PER_IP: "3",
      CERTBRIDGE_SSH_MAX_CONNECTIONS: "5",
      CERTBRIDGE_MYPROXY_PORT: String(await freePort()),
      CERTBRIDGE_MYPROXY_LISTEN_HOST: "127.0.0.1",
    },
  });
  ssh = await startSshServer(portal.cb, () => {});
  const { cb } = portal;
  myproxy = await startMyProxyServer(
    cb,
    {
      token: cb.authority.register(myproxyToken({ db: cb.db, provider: await createProvider(cb.config, cb.db), clock: cb.clock })),
      renewal: cb.authority.register(myproxyRenewer({ db: cb.db, ca: cb.ca, clock: cb.clock, accountUrl: `${cb.config.publicUrl}/account` })),
    },
    () => {},
  );
});
after(async () => {
  await myproxy?.close();
  await ssh?.close();
  await portal?.cleanup();
});

/** A raw TCP peer: what it received, and when it was closed (ms after connecting). */
function rawPeer(localAddress = "127.0.0.1", port = ssh.port) {
  const started = Date.now();
  const socket = net.connect({ host: "127.0.0.1", port, localAddress });
  let received = "";
  socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
  socket.on("error", () => {});
  const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now() - started)));
  const connected = new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { socket, closed, connected, received: () => received };
}

/** Wait until the peer has the server's identification line, or has been closed. */
async function greeted(p: ReturnType<typeof rawPeer>): Promise<boolean> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (p.received().startsWith("SSH-2.0-")) return true;
    if (p.socket.destroyed) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

describe("SSH connection limits", () => {
  test("connections per IP and overall are capped: the one over the cap is closed before the SSH greeting", async () => {
    const before = { perIp: metrics.sshConnectionsRefused.get({ reason: "per_ip" }), global: metrics.sshConnectionsRefused.get({ reason: "global" }) };
    const a = [rawPeer(), rawPeer(), rawPeer()];
    for (const p of a) assert.equal(await greeted(p), true);
    const fourthFromSameIp = rawPeer();
    assert.equal(await greeted(fourthFromSameIp), false, "the 4th connection from one IP is refused");
    await fourthFromSameIp.closed;
    const b = [rawPeer("127.0.0.2"), rawPeer("127.0.0.2")];
    for (const p of b) assert.equal(await greeted(p), true, "another IP still gets in");
    const sixth = rawPeer("127.0.0.3");
    assert.equal(await greeted(sixth), false, "the 6th connection overall is refused");
    await sixth.closed;
    assert.equal(metrics.sshConnectionsRefused.get({ reason: "per_ip" }), before.perIp + 1);
    assert.equal(metrics.sshConnectionsRefused.get({ reason: "global" }), before.global + 1);
    for (const p of [...a, ...b]) p.socket.destroy();
    await Promise.all([...a, ...b].map((p) => p.closed));
    // The slots are free again.
    const again = rawPeer();
    assert.equal(await greeted(again), true);
    again.socket.destroy();
    await again.closed;
  });

  test("a peer that never sends its identification string is closed at the handshake deadline", async () => {
    const before = metrics.sshConnectionsRefused.get({ reason: "handshake_timeout" });
    const silent = rawPeer();
    await silent.connected;
    const closedAfter = await silent.closed;
    assert.ok(closedAfter >= HANDSHAKE_SECONDS * 1000 - 100, `closed after ${closedAfter} ms`);
    assert.ok(closedAfter < HANDSHAKE_SECONDS * 1000 + 3000, `closed after ${closedAfter} ms`);
    assert.equal(metrics.sshConnectionsRefused.get({ reason: "handshake_timeout" }), before + 1);
  });

  test("the MyProxy listener closes a peer that never starts its TLS handshake at the same deadline", async () => {
    const silent = rawPeer("127.0.0.1", myproxy.port);
    await silent.connected;
    const closedAfter = await silent.closed;
    assert.ok(closedAfter >= HANDSHAKE_SECONDS * 1000 - 100 && closedAfter < HANDSHAKE_SECONDS * 1000 + 3000, `closed after ${closedAfter} ms`);
  });

  test("a client that finished the key exchange is not cut off by the handshake deadline", async () => {
    const client = new Client();
    let closed = false;
    let release: (() => void) | null = null;
    const handshook = new Promise<void>((resolve) => client.once("handshake", () => resolve()));
    client.on("close", () => (closed = true));
    client.on("error", () => {});
    client.connect({
      host: "127.0.0.1",
      port: ssh.port,
      username: "proxy",
      // Hold the first authentication step past the deadline.
      authHandler: (_methods, _partial, next) => {
        release = () => next(false as never);
      },
    });
    await handshook;
    await new Promise((r) => setTimeout(r, HANDSHAKE_SECONDS * 1000 + 500));
    assert.equal(closed, false);
    (release as (() => void) | null)?.();
    client.end();
  });
});

describe("SSH authentication attempts per connection", () => {
  /** Offer `n` unregistered keys (or passwords) one after another; returns how many the server answered before it closed. */
  async function attempts(kind: "publickey" | "password", n: number): Promise<{ tried: number; closedByServer: boolean }> {
    const keys = Array.from({ length: n }, () => utils.parseKey(utils.generateKeyPairSync("ed25519").private));
    const client = new Client();
    let tried = 0;
    return new Promise((resolve) => {
      client.on("error", () => {});
      client.on("ready", () => {
        client.end();
        resolve({ tried, closedByServer: false });
      });
      client.on("close", () => resolve({ tried, closedByServer: tried < n }));
      client.connect({
        host: "127.0.0.1",
        port: ssh.port,
        username: "proxy",
        authHandler: (_methods, _partial, next) => {
          if (tried >= n) return next(false as never);
          tried++;
          if (kind === "password") return next({ type: "password", username: "proxy", password: `guess-${tried}` });
          const key = keys[tried - 1]!;
          if (key instanceof Error || Array.isArray(key)) throw new Error("key");
          next({ type: "publickey", username: "proxy", key });
        },
      });
    });
  }

  test("after 3 refused keys the server closes the connection: the 4th and later are never answered", async () => {
    const before = metrics.sshConnectionsRefused.get({ reason: "auth_attempts" });
    const r = await attempts("publickey", 10);
    assert.equal(r.closedByServer, true);
    assert.ok(r.tried <= 4, `the client got to try ${r.tried} keys`);
    assert.equal(metrics.sshConnectionsRefused.get({ reason: "auth_attempts" }), before + 1);
  });

  test("passwords count too", async () => {
    const r = await attempts("password", 10);
    assert.equal(r.closedByServer, true);
    assert.ok(r.tried <= 4, `the client got to try ${r.tried} passwords`);
  });
});
