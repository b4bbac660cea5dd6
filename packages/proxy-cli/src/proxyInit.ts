/**
 * certbridge-proxy-init: voms-proxy-init for federated identities.
 *
 * Login (default): the OAuth 2.0 device authorization grant (RFC 8628). It
 * prints a URL and a short code; the person approves in any browser (their
 * laptop or phone, not necessarily this machine). The proxy key is generated
 * here and only a CSR goes to the portal. The proxy file is written
 * atomically with mode 0600.
 *
 * --renew: see renewer.ts.
 *
 * Exit status: 0 ok, 1 runtime error (one line on stderr), 2 usage error,
 * 3 --renew --once: fine now, but renewal ends within --warn-before.
 */
import fs from "node:fs";
import path from "node:path";
import QRCode from "qrcode";
import { formatDuration } from "../../../lib/duration";
import { CLI_CLIENT_SCOPES } from "../../../lib/oidc/cliClient";
import { ProxyFileError } from "../../../lib/inspect/proxyFile";
import { proxyToolEnvironment } from "./env";
import { CredentialError, obtainProxy, shortAcWarnings, writeRefreshTokenFile } from "./credentials";
import { PortalClient, PortalRefusal, PortalUnavailable } from "./portalClient";
import { parseProxyInitArgs, PROXY_INIT_USAGE, UsageError, type ProxyInitOptions } from "./proxyOptions";
import { runRenewer } from "./renewer";

const NAME = "certbridge-proxy-init";
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => (clearTimeout(t), resolve());
    // The listener goes when the sleep ends: a long-running --renew sleeps many times on one signal.
    const t = setTimeout(() => (signal?.removeEventListener("abort", onAbort), resolve()), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/** What a refusal at login means for the person at the terminal. */
function loginRefusalMessage(e: PortalRefusal): string {
  switch (e.error) {
    case "expired_token":
      return "the login code expired before it was approved in the browser: run certbridge-proxy-init again";
    case "access_denied":
      return "the login was denied in the browser (or cancelled): no proxy was issued";
    case "invalid_client":
    case "unauthorized_client":
      return `the portal does not accept this client (${e.message}): check --client-id`;
    default:
      return `the portal refused: ${e.message}`;
  }
}

/**
 * What the login asks for: offline_access (a refresh token, and a consent that outlives the
 * login) only when there is a --refresh-token-file to keep it in.
 */
export function loginScopes(refreshTokenFile: string | undefined): string {
  const all = CLI_CLIENT_SCOPES.split(" ");
  return (refreshTokenFile ? all : all.filter((s) => s !== "offline_access")).join(" ");
}

/**
 * Before the browser step: the refresh-token file's directory exists (made 0700 when missing)
 * and we may write there, so a login is never wasted on a path that cannot be saved.
 */
export function prepareRefreshTokenDir(file: string): void {
  const dir = path.dirname(file);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!fs.statSync(dir).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    fs.accessSync(dir, fs.constants.W_OK);
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const where = code === "EISDIR" ? file : dir;
    throw new CredentialError(`cannot keep the refresh token in ${file}: ${where}: ${code} (nothing was sent to the portal)`);
  }
}

async function login(o: ProxyInitOptions & { portal: string }, print: (line: string) => void, warn: (line: string) => void): Promise<number> {
  if (o.refreshTokenFile) prepareRefreshTokenDir(o.refreshTokenFile);
  const client = new PortalClient(o.portal, o.clientId);
  const auth = await client.startDeviceLogin(loginScopes(o.refreshTokenFile));
  const url = auth.verification_uri_complete ?? auth.verification_uri;
  if (o.quiet) {
    print(`${url} ${auth.user_code}`);
  } else {
    print("To get your proxy, open this page in a browser (on any device):");
    print("");
    print(`  ${url}`);
    print("");
    print(`and check that it shows the code  ${auth.user_code}`);
    if (auth.verification_uri_complete) print(`(or open ${auth.verification_uri} and type the code in)`);
  }
  if (o.qr) print(await QRCode.toString(url, { type: "terminal", small: true }));
  if (!o.quiet) print(`Waiting for you to sign in (the code expires in ${formatDuration(auth.expires_in)})...`);
  let tokens;
  try {
    tokens = await client.waitForDeviceApproval(auth, sleep);
  } catch (e) {
    if (e instanceof PortalRefusal) throw new CredentialError(loginRefusalMessage(e));
    throw e;
  }
  // Store the refresh token first: it is the one credential that cannot be fetched again without a browser.
  if (o.refreshTokenFile) {
    if (!tokens.refresh_token) throw new CredentialError("the portal issued no refresh token (offline_access was not granted), so --refresh-token-file cannot be used");
    writeRefreshTokenFile(o.refreshTokenFile, { portal: o.portal, client_id: o.clientId, refresh_token: tokens.refresh_token });
  }
  const { info, clamped } = await obtainProxy(client, tokens.access_token, { out: o.out, lifetimeSeconds: o.lifetimeSeconds, voms: o.voms });
  for (const w of shortAcWarnings(info)) warn(w);
  if (!o.quiet) {
    print(`Signed in as ${info.identity}`);
    for (const v of info.voms) print(`VO ${v.vo}: ${v.fqans.join(" ")}`);
    const left = Math.max(0, Math.floor((info.notAfter.getTime() - Date.now()) / 1000));
    print(`Your proxy is in ${o.out}, valid until ${info.notAfter.toISOString()} (${formatDuration(left)})${clamped ? ", shortened to the portal's maximum" : ""}.`);
    if (o.refreshTokenFile) print(`Refresh token saved in ${o.refreshTokenFile}: renew with ${NAME} --renew --refresh-token-file ${o.refreshTokenFile} --out ${o.out}`);
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const print = (line: string) => process.stdout.write(`${line}\n`);
  const env = proxyToolEnvironment();
  try {
    const o = parseProxyInitArgs(argv, env);
    if (o === "help") {
      print(PROXY_INIT_USAGE);
      return 0;
    }
    if (o.mode === "login") return await login({ ...o, portal: o.portal! }, print, (line) => process.stderr.write(`${line}\n`));
    const stop = new AbortController();
    process.once("SIGTERM", () => stop.abort());
    process.once("SIGINT", () => stop.abort());
    return await runRenewer(
      { ...o, refreshTokenFile: o.refreshTokenFile! },
      { now: Date.now, sleep, log: (l) => process.stderr.write(`${l}\n`), random: Math.random, hostname: env.hostname },
      stop.signal,
    );
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${NAME}: ${e.message}\n${PROXY_INIT_USAGE.split("\n")[0]} (${NAME} --help)\n`);
      return 2;
    }
    if (e instanceof CredentialError || e instanceof PortalRefusal || e instanceof PortalUnavailable || e instanceof ProxyFileError) {
      process.stderr.write(`${NAME}: ${e.message}\n`);
      return 1;
    }
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`${NAME}: ${err.code && err.path ? `${err.path}: ${err.code}` : `unexpected error: ${err.message}`}\n`);
    return 1;
  }
}
