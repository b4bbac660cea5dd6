/**
 * A MyProxy-protocol listener (myproxy-logon, MYPROXYv2) in front of the
 * authority: VO boxes and scripts that retrieve proxies with the stock
 * MyProxy client keep working unchanged. Nothing is stored here: a GET is a
 * fresh proxy issued for the person an access token (the PASSPHRASE) belongs
 * to, exactly as /getproxy would issue it.
 *
 * Wire format (MyProxy 6, plain TLS records, TLS 1.2 only: the client fails
 * under TLS 1.3 right after the first reply): the client sends one byte "0",
 * then a NUL-terminated request of KEY=value lines; the server answers
 * VERSION=MYPROXYv2 / RESPONSE=0|1 (ERROR= lines). GET then continues with
 * the delegation: the client sends a DER PKCS#10 request, the server one
 * byte (the number of certificates) and the DER certificates, proxy first,
 * then a final response. An empty passphrase asks for renewal: the server
 * answers RESPONSE=2 with a challenge, the client signs it with its -a
 * credential and sends that chain (provisioner myproxyRenewer decides).
 */
import crypto from "node:crypto";
import tls from "node:tls";
import type { Certbridge } from "../certbridge";
import type { Channel } from "../authority/authority";
import type { MyProxyRequester, MyProxyTokenInput } from "../authority/provisioners/myproxyToken";
import type { MyProxyRenewalInput } from "../authority/provisioners/myproxyRenewer";
import type { Requester } from "../authority/types";
import { CertbridgeError, accessDenied, asCertbridgeError, invalidRequest } from "../errors";
import { listLiveRenewalConsents, recordAudit } from "../db";
import * as der from "../pki/der";
import { parseVomsRequests, vomsExtension, type VomsRequest } from "../voms/proxyExtension";
import { listenOn } from "../nodeHttp";
import { trustDirectoryContents } from "../ca/trustBundle";
import { verifyClientChain } from "./clientChain";
import { issueHostCertificate, loadHostCredential, type HostCredential } from "./hostCertificate";

export const MYPROXY_VERSION = "MYPROXYv2";
export const Command = { GET: 0, PUT: 1, INFO: 2, DESTROY: 3, CHANGE_PASSWORD: 4, STORE: 5, RETRIEVE: 6, GET_TRUSTROOTS: 7 } as const;

const MAX_REQUEST = 64 * 1024;
const IDLE_MS = 60_000;

export interface MyProxyRequest {
  version: string;
  command: number;
  username: string;
  passphrase: string;
  lifetimeSeconds: number | undefined;
  credName: string | undefined;
  trustedCerts: boolean;
  voname: string[];
  vorole: string[];
}

/** The request's KEY=value lines (repeated keys kept in order). */
export function parseRequest(text: string): MyProxyRequest {
  const fields = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    if (!line) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw invalidRequest(`malformed request line ${JSON.stringify(line.slice(0, 40))}`);
    const key = line.slice(0, eq);
    fields.set(key, [...(fields.get(key) ?? []), line.slice(eq + 1)]);
  }
  const one = (k: string) => fields.get(k)?.at(-1);
  const version = one("VERSION") ?? "";
  if (version !== MYPROXY_VERSION) throw invalidRequest(`unsupported protocol version ${JSON.stringify(version.slice(0, 20))} (this server speaks ${MYPROXY_VERSION})`);
  const command = one("COMMAND");
  if (command === undefined || !/^\d{1,2}$/.test(command)) throw invalidRequest("COMMAND is missing or malformed");
  const lifetime = one("LIFETIME");
  if (lifetime !== undefined && !/^\d{1,9}$/.test(lifetime)) throw invalidRequest("LIFETIME must be a whole number of seconds");
  return {
    version,
    command: Number(command),
    username: one("USERNAME") ?? "",
    passphrase: one("PASSPHRASE") ?? "",
    lifetimeSeconds: lifetime === undefined || lifetime === "0" ? undefined : Number(lifetime),
    credName: one("CRED_NAME"),
    trustedCerts: one("TRUSTED_CERTS") === "1",
    voname: fields.get("VONAME") ?? [],
    vorole: fields.get("VOROLE") ?? [],
  };
}

/** VONAME=vo (or vo:fqan) and VOROLE=/vo/…/Role=r, with /getproxy's semantics (voname and fqans). */
export function vomsOf(req: Pick<MyProxyRequest, "voname" | "vorole">): VomsRequest[] {
  return parseVomsRequests([...req.voname, ...req.vorole.map((f) => `${f.split("/")[1] ?? ""}:${f}`)]);
}

/** RESPONSE=0 (OK), 1 (ERROR) or 2 (AUTHORIZATION_REQUIRED: the client answers a challenge). */
export function response(ok: boolean | "authorize", lines: string[] = []): Buffer {
  return Buffer.from(`VERSION=${MYPROXY_VERSION}\nRESPONSE=${ok === "authorize" ? 2 : ok ? 0 : 1}\n${lines.map((l) => `${l}\n`).join("")}\0`, "latin1");
}

/**
 * MyProxy's authorization methods (myproxy_authorization.h author_method_t): the client's answer
 * starts with the method's number in a 4-byte word. X509_certificate_SHA256 is offered (MyProxy ≥
 * 6.1 clients), and "password" only so that a client without -a answers and hears why it cannot renew.
 */
export const AuthMethod = { PASSWORD: 1, X509_CERTIFICATE: 2, X509_CERTIFICATE_SHA256: 4 } as const;
export const CHALLENGE_METHOD_NAME = "X509_certificate_SHA256";

export interface AuthorizationAnswer {
  method: number;
  signature: Uint8Array;
  chain: Uint8Array[];
}

/** Length of the DER TLV at `off` in `b`, or null if incomplete (throws on a malformed or oversized header). */
function derLength(b: Buffer, off: number): number | null {
  if (b.length < off + 2) return null;
  const first = b[off + 1]!;
  if (first < 0x80) return 2 + first;
  const octets = first & 0x7f;
  if (octets === 0 || octets > 3) throw invalidRequest("malformed DER length in the client's data");
  if (b.length < off + 2 + octets) return null;
  let len = 0;
  for (let i = 0; i < octets; i++) len = len * 256 + b[off + 2 + i]!;
  return 2 + octets + len;
}

/**
 * The client's answer to the X.509 challenge (myproxy.c myproxy_handle_authorization, then
 * myproxy_authorization.c auth_cert_create_client_data): a 4-byte word whose first byte is the
 * method, the signature's length (4 bytes, big-endian), the signature, one byte counting the
 * certificates, then the DER certificates, leaf first (ssl_utils.c creds_to_bio).
 * Returns its length once complete, or null; a password answer runs to its NUL.
 */
export function takeAuthorizationAnswer(b: Buffer): number | null {
  if (b.length < 4) return null;
  if (b[0] !== AuthMethod.X509_CERTIFICATE_SHA256 && b[0] !== AuthMethod.X509_CERTIFICATE) {
    const nul = b.indexOf(0, 4);
    return nul < 0 ? null : nul + 1;
  }
  if (b.length < 8) return null;
  const sigLen = b.readUInt32BE(4);
  if (sigLen === 0 || sigLen > 2048) throw invalidRequest("malformed renewal authorization: bad signature length");
  let off = 8 + sigLen;
  if (b.length < off + 1) return null;
  const count = b[off]!;
  if (count === 0 || count > 10) throw invalidRequest("malformed renewal authorization: 1 to 10 certificates expected");
  off += 1;
  for (let i = 0; i < count; i++) {
    if (b.length > off && b[off] !== 0x30) throw invalidRequest("malformed renewal authorization: expected a DER certificate");
    const len = derLength(b, off);
    if (len === null || b.length < off + len) return null;
    off += len;
  }
  return off;
}

export function parseAuthorizationAnswer(raw: Buffer): AuthorizationAnswer {
  const method = raw[0]!;
  if (method !== AuthMethod.X509_CERTIFICATE_SHA256 && method !== AuthMethod.X509_CERTIFICATE) return { method, signature: new Uint8Array(), chain: [] };
  const sigLen = raw.readUInt32BE(4);
  const signature = new Uint8Array(raw.subarray(8, 8 + sigLen));
  const chain: Uint8Array[] = [];
  let off = 9 + sigLen;
  for (let i = 0; i < raw[8 + sigLen]!; i++) {
    const len = derLength(raw, off)!;
    chain.push(new Uint8Array(raw.subarray(off, off + len)));
    off += len;
  }
  return { method, signature, chain };
}

export const errorResponse = (message: string) => response(false, message.split("\n").map((l) => `ERROR=${l}`));

/** HH:MM:SS, as myproxy-info prints time left. */
const hms = (s: number) => `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;

/** The certificates the client sent, leaf first (TLS does not judge them: see clientChain.ts). */
function peerChain(socket: tls.TLSSocket): Uint8Array[] {
  const out: Uint8Array[] = [];
  let c = socket.getPeerCertificate(true) as tls.DetailedPeerCertificate | Record<string, never>;
  while (c && "raw" in c && c.raw && out.length < 12) {
    const raw = new Uint8Array(c.raw);
    if (out.some((o) => Buffer.from(o).equals(raw))) break; // a self-signed certificate is its own issuer
    out.push(raw);
    c = c.issuerCertificate;
  }
  return out;
}

/** Bytes in, awaited by what the protocol expects next. */
class Incoming {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private ended: Error | null = null;

  constructor(socket: tls.TLSSocket) {
    socket.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      if (this.buf.length > MAX_REQUEST) this.finish(new Error("request too large"));
      this.wake?.();
    });
    socket.on("end", () => this.finish(new Error("the client closed the connection")));
    socket.on("close", () => this.finish(new Error("the connection closed")));
    socket.on("error", (e) => this.finish(e));
  }

  private finish(e: Error) {
    this.ended ??= e;
    this.wake?.();
  }

  /** Wait until `take` finds a complete unit (returns its length), and consume it. */
  private async next(take: (b: Buffer) => number | null): Promise<Buffer> {
    for (;;) {
      const n = take(this.buf);
      if (n !== null) {
        const out = this.buf.subarray(0, n);
        this.buf = this.buf.subarray(n);
        return out;
      }
      if (this.ended) throw this.ended;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }

  /** The optional leading "0" byte, then text up to NUL. */
  async request(first: boolean): Promise<string> {
    if (first) await this.next((b) => (b.length ? (b[0] === 0x30 ? 1 : 0) : null));
    const raw = await this.next((b) => {
      const i = b.indexOf(0);
      return i < 0 ? null : i + 1;
    });
    return raw.subarray(0, raw.length - 1).toString("latin1");
  }

  /** The answer to the X.509 challenge (takeAuthorizationAnswer). */
  async authorizationAnswer(): Promise<AuthorizationAnswer> {
    return parseAuthorizationAnswer(await this.next(takeAuthorizationAnswer));
  }

  /** One DER SEQUENCE (the client's PKCS#10 request). */
  async derSequence(): Promise<Uint8Array> {
    return new Uint8Array(
      await this.next((b) => {
        if (b.length < 2) return null;
        if (b[0] !== 0x30) throw invalidRequest("expected a DER certificate request");
        const first = b[1]!;
        if (first < 0x80) return b.length >= 2 + first ? 2 + first : null;
        const octets = first & 0x7f;
        if (octets === 0 || octets > 3) throw invalidRequest("malformed DER length in the certificate request");
        if (b.length < 2 + octets) return null;
        let len = 0;
        for (let i = 0; i < octets; i++) len = len * 256 + b[2 + i]!;
        const total = 2 + octets + len;
        return b.length >= total ? total : null;
      }),
    );
  }
}

export interface MyProxyService {
  port: number;
  hostSubject: string;
  close(): Promise<void>;
}

export interface MyProxyChannels {
  /** GET with a passphrase: an access token or a one-time code. */
  token: Channel<MyProxyTokenInput, MyProxyRequester>;
  /** GET with an empty passphrase: renewal by a registered renewer (the X.509 challenge). */
  renewal: Channel<MyProxyRenewalInput, Requester>;
}

export async function startMyProxyServer(cb: Certbridge, channels: MyProxyChannels, log: (m: string) => void): Promise<MyProxyService> {
  const settings = cb.config.myproxy;
  if (!settings) throw new Error("the MyProxy listener is not configured");
  const host: HostCredential =
    settings.hostCertFile && settings.hostKeyFile
      ? loadHostCredential(settings.hostCertFile, settings.hostKeyFile)
      : await issueHostCertificate(cb.ca, cb.config.subject.base, settings.hostName, cb.clock);

  const consoleUrl = `${cb.config.publicUrl}/account`;

  /** Refusals before the authority saw the request (it audits its own); GET's are proxy refusals. */
  const auditRefusal = (req: Partial<MyProxyRequest>, ip: string | null, err: CertbridgeError, clientId: string | null, renewer: string | null = null) =>
    recordAudit(cb.db, {
      action: req.command === undefined || req.command === Command.GET ? "proxy.refuse" : "myproxy.refuse",
      actor: clientId ? `client:${clientId}` : renewer ? `renewer:${renewer}` : "anonymous",
      outcome: "refused",
      clientId,
      ip,
      details: { channel: "myproxy", command: req.command ?? null, username: req.username ?? null, ...(renewer ? { renewer } : {}), error: err.code, reason: err.message },
    }).catch(() => {});

  /**
   * Renewal (empty passphrase, `myproxy-logon -a`): RESPONSE=2 with a fresh challenge; the client
   * signs it with the -a credential's key and sends that chain (myproxy_authorization.c).
   */
  async function authorizeRenewal(socket: tls.TLSSocket, incoming: Incoming, req: MyProxyRequest, ip: string | null, seen: { renewer: string | null }): Promise<Requester> {
    const challenge = crypto.randomBytes(16).toString("hex");
    // "password" is offered too, only so that a client without -a answers (and hears why it cannot renew).
    socket.write(response("authorize", [`AUTHORIZATION_DATA=${CHALLENGE_METHOD_NAME}:${challenge}`, "AUTHORIZATION_DATA=password:renewal needs -a"]));
    const answer = await incoming.authorizationAnswer();
    if (answer.method !== AuthMethod.X509_CERTIFICATE_SHA256) {
      throw accessDenied(
        answer.method === AuthMethod.X509_CERTIFICATE
          ? "renewal needs the SHA-256 challenge (MyProxy 6.1 or later clients)"
          : "an empty passphrase asks for renewal: give the renewer's credential with -a (myproxy-logon -a <host proxy>), or a passphrase (an access token or a one-time code from your account page)",
      );
    }
    return channels.renewal.authorize({ username: req.username, challenge, signature: answer.signature, chain: answer.chain, tlsChain: peerChain(socket), voms: vomsOf(req), ip, seen });
  }

  async function serveGet(socket: tls.TLSSocket, incoming: Incoming, req: MyProxyRequest, ip: string | null, state: { audited: boolean }) {
    const seen = { clientId: null as string | null, renewer: null as string | null };
    let requester: Requester;
    try {
      const voms = vomsOf(req);
      requester = req.passphrase === "" ? await authorizeRenewal(socket, incoming, req, ip, seen) : await channels.token.authorize({ username: req.username, token: req.passphrase, ip, seen });
      // VOMS refusals before the delegation starts: after OK the client expects certificates.
      if (voms.length) vomsExtension(cb.vos, voms, cb.clock, requester.allowedVos).authorize?.({ identity: requester.identity, claims: requester.claims });
    } catch (e) {
      const err = asCertbridgeError(e);
      if (err.status < 500) await auditRefusal(req, ip, err, seen.clientId, seen.renewer);
      state.audited = true;
      throw e;
    }
    // Trust roots asked for (-T) ride on the first OK, as myproxy-server sends them.
    socket.write(response(true, req.trustedCerts ? await trustRootLines() : []));
    const csr = await incoming.derSequence();
    state.audited = true; // the authority audits its refusals and its issuance
    const proxy = await cb.authority.issueProxy(requester, { publicKey: csr, lifetimeSeconds: req.lifetimeSeconds, voms: vomsOf(req) });
    // The proxy, then the chain above it up to (not including) the CA.
    const certs = der.pemBlocks(proxy.pem).filter((b) => b.label === "CERTIFICATE").map((b) => Buffer.from(b.der));
    socket.write(Buffer.concat([Buffer.of(certs.length), ...certs]));
    socket.write(response(true));
  }

  /** TRUSTED_CERTS= and FILEDATA_<file>= lines: the trust directory's top-level files (CA, signing_policy, namespaces, CRL). */
  async function trustRootLines(): Promise<string[]> {
    const { content } = await trustDirectoryContents(cb);
    const files = Object.entries(content).filter(([name]) => !name.includes("/"));
    return [`TRUSTED_CERTS=${files.map(([n]) => n).join(",")}`, ...files.map(([n, text]) => `FILEDATA_${n}=${Buffer.from(text).toString("base64")}`)];
  }

  /**
   * myproxy-info: authenticated by the person's proxy chain; nothing is stored, so this describes
   * what may be retrieved. With renewal consents, the time left is until the last of them ends
   * (what a VO box may still renew: the 12-hour trap of stored credentials made visible), and
   * CRED_RENEWER names the VO boxes; without, until the person's user certificate ends.
   */
  async function serveInfo(socket: tls.TLSSocket, req: MyProxyRequest) {
    const now = cb.clock();
    const who = await verifyClientChain(cb.db, cb.ca, peerChain(socket), now);
    const asked = req.username.trim().replace(/\/+$/, "");
    if (asked && asked !== who.subject && asked !== who.identityId) throw accessDenied("you may only ask about yourself: USERNAME must be your certificate's subject (myproxy-info -d) or your account name");
    const max = cb.authority.maxLifetimeSeconds();
    const consents = await listLiveRenewalConsents(cb.db, who.identityId, now);
    const end = consents.length ? new Date(Math.max(...consents.map((c) => c.expiresAt.getTime()))) : who.userNotAfter;
    const renewals = consents.map((c) => `${c.renewer.subject} for ${c.role ?? c.vo} until ${c.expiresAt.toISOString()}`);
    socket.write(
      response(true, [
        `CRED_START_TIME=${Math.floor(who.userNotBefore.getTime() / 1000)}`,
        `CRED_END_TIME=${Math.floor(end.getTime() / 1000)}`,
        `CRED_OWNER=${who.subject}`,
        `CRED_DESC=fresh proxies on request, maximum retrieval lifetime ${hms(max)} (${max} s)${consents.length ? `; renewal consents: ${renewals.join("; ")}` : "; no renewal consent"}`,
        `CRED_RETRIEVER=holders of an access token with the proxy scope that you granted at ${consoleUrl}`,
        ...(consents.length ? [`CRED_RENEWER=${[...new Set(consents.map((c) => c.renewer.subject))].join(",")}`] : []),
      ]),
    );
  }

  async function serve(socket: tls.TLSSocket) {
    const ip = socket.remoteAddress ?? null;
    const incoming = new Incoming(socket);
    let req: Partial<MyProxyRequest> = {};
    const state = { audited: false };
    try {
      const parsed = parseRequest(await incoming.request(true));
      req = parsed;
      switch (parsed.command) {
        case Command.GET:
          await serveGet(socket, incoming, parsed, ip, state);
          break;
        case Command.INFO:
          await serveInfo(socket, parsed);
          break;
        case Command.GET_TRUSTROOTS:
          socket.write(response(true, await trustRootLines()));
          break;
        case Command.PUT:
        case Command.STORE:
        case Command.DESTROY:
        case Command.CHANGE_PASSWORD:
        case Command.RETRIEVE:
          throw invalidRequest(
            `this server stores no credentials (myproxy-init, myproxy-store, myproxy-retrieve, myproxy-destroy and myproxy-change-pass do not apply): it issues a fresh proxy for each retrieval.\n` +
              `To let a gateway or VO box retrieve your proxies, sign in and grant it access (consent) at ${consoleUrl}; it then runs myproxy-logon -l "<your DN>" with an access token as the passphrase.`,
          );
        default:
          throw invalidRequest(`command ${parsed.command} is not supported by this server`);
      }
    } catch (e) {
      const err = asCertbridgeError(e);
      if (err.code === "server_error") log(`myproxy: ${(e as Error).stack}`);
      else if (!state.audited && !/closed the connection|connection closed/.test(err.message)) await auditRefusal(req, ip, err, null);
      if (!socket.destroyed) socket.write(errorResponse(err.code === "server_error" ? "internal error" : err.message));
    }
    socket.end();
  }

  const server = tls.createServer(
    {
      key: host.keyPem,
      cert: host.certPem,
      // myproxy-info authenticates with a proxy chain, checked in clientChain.ts (OpenSSL here would refuse proxies).
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
      maxVersion: "TLSv1.2",
      // A peer that connects and never finishes the TLS handshake is closed (the SSH listener's deadline).
      handshakeTimeout: cb.config.operations.ssh.handshakeTimeoutSeconds * 1000,
    },
    (socket) => {
      socket.setNoDelay(true); // small protocol messages: no Nagle delay between them
      socket.setTimeout(IDLE_MS, () => socket.destroy());
      socket.on("error", () => {});
      void serve(socket);
    },
  );
  // A failed or timed-out handshake: close the socket (with a listener here, Node leaves that to us).
  server.on("tlsClientError", (_e, socket) => socket.destroy());
  // The SSH listener's global cap applies here too: further connections are closed at once.
  server.maxConnections = cb.config.operations.ssh.maxConnections;
  await listenOn(server, settings.port, settings.listenHost, "CERTBRIDGE_MYPROXY_PORT");
  const port = (server.address() as { port: number }).port;
  log(`MyProxy protocol on ${settings.listenHost}:${port} (host certificate ${host.subject})`);
  return { port, hostSubject: host.subject, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
