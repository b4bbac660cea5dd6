/**
 * `ssh proxy@portal > proxy.pem`: an SSH server (ssh2) whose only service is
 * a fresh proxy on stdout. People authenticate with the public keys they
 * registered; the session's command line carries voms-proxy-init style
 * arguments ("voms=biomed lifetime=12h"). There is no shell, no forwarding,
 * no subsystem, no password or keyboard-interactive login: every such
 * request is refused. The host key is the portal's own, generated once and
 * kept sealed under the KEK in the database, shared by every instance.
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import ssh2, { type Connection, type ServerChannel } from "ssh2";
import type { Certbridge } from "../certbridge";
import { asCertbridgeError, invalidRequest } from "../errors";
import { createSealedSigningKey, findSealedSigningKey, findSshKeyByFingerprint, isUniqueViolation, touchSshKey, type Db } from "../db";
import { writeFileAtomic } from "../files";
import { openSealedKey, sealKey } from "../pki/seal";
import { formatDuration, parseDuration } from "../duration";
import { parseVomsRequests } from "../voms/proxyExtension";
import { sshFingerprint } from "./keys";
import { listenOn } from "../nodeHttp";
import { metrics } from "../metrics";
import { normalizeIp } from "../limits/clientIp";

const { Server, utils } = ssh2; // CommonJS: named exports via the default import

const HOST_KEY_CONTEXT = "certbridge:ssh-host-key";
export const SSH_USER = "proxy";
/**
 * The one-line command that saves a proxy where grid tools look for it, with mode 0600 whatever the
 * umask and even over an older file (GNU install unlinks it and creates the new one O_EXCL, 0600;
 * Globus refuses a proxy file readable by others). -T: no terminal, see refuseTerminal.
 */
export function sshSaveCommand(host: string, port = 22, args = "", file = "/tmp/x509up_u$(id -u)"): string {
  return `ssh -T${port === 22 ? "" : ` -p ${port}`} ${SSH_USER}@${host}${args ? ` ${args}` : ""} | install -m 600 /dev/stdin ${file}`;
}
const SAVE_HINT = sshSaveCommand("<portal>");
const USAGE = `usage: ssh -T ${SSH_USER}@<portal> [voms=<vo>[:<fqan>]]... [lifetime=<12h|HH:MM|seconds> | time=<hours>] | install -m 600 /dev/stdin proxy.pem
       ssh -T ${SSH_USER}@<portal> info     your certificate subject and the longest proxy you can get now
       ssh -T ${SSH_USER}@<portal> help     this text`;

/** What \`help\` prints (stdout, exit 0): the words of both dialects, Certbridge's and the MasterPortal's. */
export const SSH_HELP = `${USAGE}

  voms=<vo>               VOMS attributes of the VO (its groups); repeatable
  voms=<vo>:<fqan>        a role or group within the VO, e.g. voms=biomed:/biomed/Role=pilot
  lifetime=<duration>     the proxy's lifetime: 12h, 1d, 90m, HH:MM or seconds
  time=<hours>            the same in hours (MasterPortal style), e.g. time=24
  info                    print your subject and the time left, issue nothing
  help                    print this text

A lifetime above the portal's maximum is shortened to it, and stderr says so.
`;

/** Where the sealed host key is kept in the database (beside the OpenID signing keys). */
const HOST_KEY_MODEL = "CertbridgeSshHostKey";
const HOST_KEY_NAME = "ed25519";

/**
 * The host key: one per deployment, so every instance behind a TCP load balancer shows clients
 * the same key and they can pin it. It is kept sealed under the KEK in the shared database; the
 * first instance to start makes it (or adopts the key file an earlier single-instance portal
 * made), and every instance writes the database's copy to its key file, which the account page
 * reads for the fingerprint.
 */
export async function loadOrCreateHostKey(db: Db, file: string, kek: Buffer): Promise<string> {
  let sealed = await findSealedSigningKey(db, HOST_KEY_MODEL, HOST_KEY_NAME);
  if (!sealed) {
    const local = fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : null;
    const candidate = local ?? sealKey(kek, Buffer.from(utils.generateKeyPairSync("ed25519", {}).private), HOST_KEY_CONTEXT);
    openHostKeySealed(candidate, kek); // a key file sealed under another KEK stops here, before it is shared
    try {
      await createSealedSigningKey(db, HOST_KEY_MODEL, HOST_KEY_NAME, candidate);
      sealed = candidate;
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      sealed = (await findSealedSigningKey(db, HOST_KEY_MODEL, HOST_KEY_NAME))!; // another instance stored one first
    }
  }
  const key = openHostKeySealed(sealed, kek);
  if (!fs.existsSync(file) || fs.readFileSync(file, "utf8").trim() !== sealed) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileAtomic(file, sealed, 0o600);
  }
  return key;
}

const openHostKeySealed = (sealed: string, kek: Buffer) => Buffer.from(openSealedKey(kek, sealed, HOST_KEY_CONTEXT)).toString("utf8");
const openHostKey = (file: string, kek: Buffer) => openHostKeySealed(fs.readFileSync(file, "utf8").trim(), kek);

/** SHA256 fingerprint of the host key, as `ssh` shows it when first connecting. */
export function hostKeyFingerprint(privateKey: string): string {
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error) throw parsed;
  return sshFingerprint(parsed.getPublicSSH());
}

/** The fingerprint of an existing host key, or null while the SSH server has not made one yet. */
export function readHostKeyFingerprint(file: string, kek: Buffer): string | null {
  if (!fs.existsSync(file)) return null;
  try {
    return hostKeyFingerprint(openHostKey(file, kek));
  } catch {
    return null;
  }
}

/** The session's command line: key=value words, or one of the words `info` and `help` (MasterPortal). */
export function parseSshArguments(command: string): { action: "proxy" | "info" | "help"; voms: string[]; lifetimeSeconds?: number } {
  const voms: string[] = [];
  let lifetimeSeconds: number | undefined;
  const words = command.trim().split(/\s+/).filter(Boolean);
  if (words.length > 16) throw invalidRequest(`too many arguments\n${USAGE}`);
  if (words.includes("help") || words.includes("--help") || words.includes("-h")) return { action: "help", voms };
  if (words.includes("info")) {
    if (words.length > 1) throw invalidRequest(`info takes no other arguments\n${USAGE}`);
    return { action: "info", voms };
  }
  const setLifetime = (seconds: () => number, what: string) => {
    if (lifetimeSeconds !== undefined) throw invalidRequest("the lifetime was given twice (lifetime= or time=)");
    try {
      lifetimeSeconds = seconds();
    } catch (e) {
      throw invalidRequest(`${what}: ${(e as Error).message}`);
    }
  };
  for (const word of words) {
    const m = /^(voms|lifetime|time)=(.+)$/.exec(word);
    if (!m) throw invalidRequest(`this server only issues proxies; unknown argument ${JSON.stringify(word.slice(0, 60))}\n${USAGE}`);
    const value = m[2]!;
    if (m[1] === "voms") voms.push(value);
    else if (m[1] === "lifetime") setLifetime(() => parseDuration(value), "lifetime");
    else
      setLifetime(() => {
        // The MasterPortal's time=: hours, whole or decimal (time=24, time=0.5).
        if (!/^\d{1,6}(\.\d{1,4})?$/.test(value)) throw new Error("give a number of hours, e.g. time=12");
        const seconds = Math.round(Number(value) * 3600);
        if (seconds < 60) throw new Error("at least one minute");
        return seconds;
      }, "time");
  }
  return { action: "proxy", voms, lifetimeSeconds };
}

/** `info`'s "HH:MM:SS  (N.N days)", as myproxy-info prints the time left. */
function timeLeft(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${h}:${pad(m)}:${pad(s)}  (${(seconds / 86400).toFixed(1)} days)`;
}

interface Person {
  identityId: string;
  keyId: string;
  fingerprint: string;
}

export interface SshService {
  port: number;
  fingerprint: string;
  close(): Promise<void>;
}

export async function startSshServer(cb: Certbridge, log: (m: string) => void): Promise<SshService> {
  const settings = cb.config.ssh;
  if (!settings) throw new Error("SSH is not configured");
  const hostKey = await loadOrCreateHostKey(cb.db, settings.hostKeyFile, cb.config.kek);

  async function serveProxy(channel: ServerChannel, person: Person, command: string, ip: string) {
    try {
      const args = parseSshArguments(command);
      if (args.action === "help") {
        channel.write(SSH_HELP);
        channel.exit(0);
        channel.end();
        return;
      }
      const requester = await cb.channels.sshKey.authorize({ identityId: person.identityId, fingerprint: person.fingerprint, ip });
      if (args.action === "info") {
        // Certbridge renews the user certificate on demand: the time left is the longest proxy it issues now.
        const max = cb.authority.maxLifetimeSeconds();
        channel.write(`username: ${requester.identity.subject}\nowner: ${requester.identity.subject}\n  timeleft: ${timeLeft(max)}\n  max proxy lifetime: ${formatDuration(max)}\n  default proxy lifetime: ${formatDuration(Math.min(cb.config.proxy.defaultLifetimeSeconds, max))}\n`);
        channel.exit(0);
        channel.end();
        return;
      }
      const proxy = await cb.authority.issueProxy(requester, { lifetimeSeconds: args.lifetimeSeconds, voms: parseVomsRequests(args.voms) });
      void touchSshKey(cb.db, person.keyId, cb.clock()).catch(() => {});
      if (proxy.lifetime.clamped) {
        const note = `certbridge: the requested lifetime ${formatDuration(args.lifetimeSeconds ?? 0)} exceeds the portal's maximum: the proxy is valid for ${formatDuration(proxy.lifetime.seconds)}, until ${proxy.notAfter.toISOString()}\n`;
        channel.stderr.write(note);
      }
      for (const w of proxy.warnings) channel.stderr.write(`certbridge: warning: ${w}\n`);
      channel.write(proxy.pem);
      channel.exit(0);
    } catch (e) {
      const err = asCertbridgeError(e);
      if (err.code === "server_error") log(`ssh: issuance failed: ${(e as Error).stack}`);
      channel.stderr.write(`certbridge: ${err.code === "server_error" ? "internal error" : err.message}\n`);
      channel.exit(1);
    }
    channel.end();
  }

  function refuseTerminal(channel: ServerChannel) {
    channel.stderr.write(`certbridge: refusing to print a proxy and its private key on a terminal: redirect the output to a file, without a terminal (ssh -T): ${SAVE_HINT}\n`);
    channel.exit(1);
    channel.end();
  }

  const limits = cb.config.operations.ssh;
  /** Sockets by "ip:port", until ssh2 hands over their connection; then the handshake clears the timer. */
  const pending = new Map<string, { handshook: () => void }>();

  function onConnection(conn: Connection, ip: string, port: number) {
    let person: Person | null = null;
    conn.once("handshake", () => pending.get(`${ip}:${port}`)?.handshook());
    // Nobody needs more than this to fetch one proxy.
    const idle = setTimeout(() => conn.end(), 60_000);
    conn.on("close", () => clearTimeout(idle));
    conn.on("error", () => {});
    // OpenSSH's MaxAuthTries: after this many refused attempts the connection is closed, so one
    // connection cannot probe hundreds of keys to learn which are registered ("none" is not counted).
    let refusals = 0;
    conn.on("authentication", (ctx) => {
      const reject = () => {
        if (ctx.method !== "none") refusals++;
        ctx.reject(["publickey"]);
        if (refusals === limits.maxAuthTries) {
          metrics.sshConnectionsRefused.inc({ reason: "auth_attempts" });
          conn.end();
        }
      };
      // Keys only (RFC 4252 §7); "none", password, keyboard-interactive and hostbased are refused.
      if (ctx.method !== "publickey" || ctx.username !== SSH_USER) return reject();
      const fingerprint = sshFingerprint(ctx.key.data);
      findSshKeyByFingerprint(cb.db, fingerprint)
        .then((row) => {
          const stored = row ? Buffer.from(row.publicKey.split(" ")[1] ?? "", "base64") : null;
          if (!row || !stored?.equals(ctx.key.data)) return reject();
          if (!ctx.signature || !ctx.blob) return ctx.accept(); // the client asks whether this key would do
          const key = utils.parseKey(row.publicKey);
          if (key instanceof Error || !key.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return reject();
          person = { identityId: row.identityId, keyId: row.id, fingerprint };
          ctx.accept();
        })
        .catch((e: unknown) => {
          log(`ssh: key lookup failed: ${(e as Error).message}`);
          reject();
        });
    });
    conn.on("ready", () => {
      conn.on("session", (acceptSession) => {
        const session = acceptSession();
        let started = false;
        let terminal = false;
        const start = (channel: ServerChannel, command: string) => {
          if (started || !person) return channel.close();
          started = true;
          // info and help print no key material: a terminal may show them.
          if (terminal && !/^\s*(info|help|--help|-h)\s*$/.test(command)) return refuseTerminal(channel);
          void serveProxy(channel, person, command, ip);
        };
        // The command gives the arguments; without one, the proxy has the defaults. A client asks for
        // a terminal (pty) when its input is one and no command is given, or with -t: the proxy and its
        // private key would then be printed on a screen, so nothing is issued (RFC 4254 §6.2).
        session.on("pty", (accept) => {
          terminal = true;
          accept?.();
        });
        session.on("env", (_accept, reject) => reject?.());
        session.on("shell", (accept) => start(accept(), ""));
        session.on("exec", (accept, _reject, info) => start(accept(), info.command));
        session.on("subsystem", (_accept, reject) => reject());
        session.on("x11", (_accept, reject) => reject?.());
        session.on("auth-agent", (_accept, reject) => reject?.());
        session.on("signal", (_accept, reject) => reject?.());
      });
      // No forwarding of any kind (RFC 4254 §7).
      conn.on("tcpip", (_accept, reject) => reject());
      conn.on("openssh.streamlocal", (_accept, reject) => reject());
      conn.on("request", (_accept, reject) => reject?.());
    });
  }

  const ssh = new Server({ hostKeys: [hostKey], ident: "Certbridge" }, (conn, info) => onConnection(conn, info.ip, info.port));
  // Sockets are accepted here and handed to ssh2 (injectSocket), so limits apply before a single
  // byte of SSH: a global cap, a cap per IP, and a deadline for the identification string and key
  // exchange (RFC 4253 §4.2, §7) — a peer that connects and says nothing is closed.
  const open = new Set<net.Socket>();
  const perIp = new Map<string, number>();
  metrics.sshConnections.collect(() => open.size);
  const server = net.createServer((socket) => {
    const ip = normalizeIp(socket.remoteAddress ?? "");
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.on("error", () => {});
    if (open.size >= limits.maxConnections || (perIp.get(ip) ?? 0) >= limits.maxConnectionsPerIp) {
      metrics.sshConnectionsRefused.inc({ reason: open.size >= limits.maxConnections ? "global" : "per_ip" });
      socket.destroy();
      return;
    }
    open.add(socket);
    perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
    const deadline = setTimeout(() => {
      metrics.sshConnectionsRefused.inc({ reason: "handshake_timeout" });
      socket.destroy();
    }, limits.handshakeTimeoutSeconds * 1000);
    pending.set(key, { handshook: () => clearTimeout(deadline) });
    socket.once("close", () => {
      clearTimeout(deadline);
      pending.delete(key);
      open.delete(socket);
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n > 0) perIp.set(ip, n);
      else perIp.delete(ip);
    });
    ssh.injectSocket(socket);
  });
  await listenOn(server, settings.port, settings.listenHost, "CERTBRIDGE_SSH_PORT");
  const fingerprint = hostKeyFingerprint(hostKey);
  const port = (server.address() as { port: number }).port;
  log(`ssh proxy retrieval on ${settings.listenHost}:${port} (user "${SSH_USER}", host key ${fingerprint})`);
  return {
    port,
    fingerprint,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
