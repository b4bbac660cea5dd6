/**
 * Integration harness: runs the production server entry (server.ts, built
 * Next app) as a child process on a free port with its own data and database,
 * and a cookie-keeping HTTP "browser" that walks the sign-in and consent
 * pages the way a person would (GET pages, submit their forms).
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import * as client from "openid-client";
import { testEnvironment, ROOT } from "./helpers";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export const GATEWAY = { id: "test-gateway", secret: "test-gateway-secret-0123456789abcdef", redirect: "http://localhost:9/callback" };
export const OTHER_GATEWAY = { id: "other-gateway", secret: "other-gateway-secret-0123456789abcdef", redirect: "http://localhost:9/other" };

export interface PortalServer {
  url: string;
  env: Record<string, string>;
  dir: string;
  output: () => string;
  restart: () => Promise<void>;
  stop: () => Promise<void>;
  /** The server process (for signals and nsenter). */
  process: () => ChildProcess | undefined;
  /** Start again after the process ended by itself or was killed. */
  start: () => Promise<void>;
  cleanup: () => Promise<void>;
}

/** `wrap`: a command that runs the server (its arguments follow), e.g. `unshare -m …` for a private mount namespace. */
export async function startPortalServer(extraEnv: Record<string, string> = {}, extraClients: Record<string, unknown>[] = [], opts: { wrap?: string[] } = {}): Promise<PortalServer> {
  const port = await freePort();
  const url = `http://localhost:${port}`;
  const t = await testEnvironment();
  const clientsFile = path.join(t.dir, "clients.json");
  fs.writeFileSync(
    clientsFile,
    JSON.stringify([
      { id: GATEWAY.id, name: "Test Gateway", homepage: "https://gateway.example.org", secret: GATEWAY.secret, redirectUris: [GATEWAY.redirect], maxProxyLifetimeSeconds: 86400 },
      { id: OTHER_GATEWAY.id, name: "Other Gateway", secret: OTHER_GATEWAY.secret, redirectUris: [OTHER_GATEWAY.redirect], scopes: ["openid", "profile", "offline_access", "proxy"], maxProxyLifetimeSeconds: 3600 },
      { id: "no-proxy-gateway", name: "Profile Only", secret: "profile-only-secret-0123456789abcdef", redirectUris: ["http://localhost:9/profile"], scopes: ["openid", "profile"] },
      ...extraClients,
    ]),
  );
  const env = {
    ...t.env,
    CERTBRIDGE_PUBLIC_URL: url,
    CERTBRIDGE_PORT: String(port),
    CERTBRIDGE_CLIENTS_FILE: clientsFile,
    NEXT_TELEMETRY_DISABLED: "1",
    ...extraEnv,
  };
  let child: ChildProcess | undefined;
  let log = "";
  const start = async () => {
    log = "";
    const argv = [...(opts.wrap ?? []), process.execPath, "--import", "tsx", path.join(ROOT, "server.ts")];
    child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`portal exited (${child.exitCode}):\n${log}`);
      try {
        // Liveness: the process serves (readiness may wait for an IdP that is down, on purpose).
        if ((await fetch(`${url}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    throw new Error(`portal did not start:\n${log}`);
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child!.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  };
  await start();
  return {
    url,
    env,
    dir: t.dir,
    output: () => log,
    restart: async () => {
      await stop();
      await start();
    },
    stop,
    process: () => child,
    start,
    cleanup: async () => {
      await stop();
      await t.cleanup();
    },
  };
}

/** A minimal browser: a cookie jar per host, manual redirects, HTML forms. */
export class Browser {
  /** host → "name path" → cookie (RFC 6265 §5.3: name, domain and path identify a cookie) */
  private readonly jar = new Map<string, Map<string, { name: string; value: string; path: string }>>();
  readonly visited: string[] = [];

  private cookieHeader(url: URL): string {
    const matches = [...(this.jar.get(url.host)?.values() ?? [])].filter((c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith("/") ? c.path : `${c.path}/`));
    return matches.map((c) => `${c.name}=${c.value}`).join("; ");
  }

  private store(url: URL, res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const pathAttr = attrs.map((a) => a.trim()).find((a) => /^path=/i.test(a));
      const cookiePath = pathAttr ? pathAttr.slice(5) : url.pathname.replace(/\/[^/]*$/, "") || "/";
      const jar = this.jar.get(url.host) ?? new Map<string, { name: string; value: string; path: string }>();
      const key = `${name} ${cookiePath}`;
      if (/max-age=0/i.test(line) || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(key);
      else jar.set(key, { name, value, path: cookiePath });
      this.jar.set(url.host, jar);
    }
  }

  /** Follow redirects until a page (2xx/4xx/5xx) or a URL matching `stopAt` (the gateway's callback). */
  async go(start: string, init: { method?: string; form?: Record<string, string> } = {}, stopAt?: (u: string) => boolean): Promise<{ url: string; status: number; html: string }> {
    let url = new URL(start);
    let method = init.method ?? "GET";
    let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
    for (let hops = 0; hops < 20; hops++) {
      this.visited.push(url.href);
      if (stopAt?.(url.href)) return { url: url.href, status: 0, html: "" };
      const res = await fetch(url, {
        method,
        redirect: "manual",
        headers: { cookie: this.cookieHeader(url), ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}) },
        body,
      });
      this.store(url, res);
      if (res.status >= 300 && res.status < 400 && res.headers.get("location")) {
        url = new URL(res.headers.get("location")!, url);
        method = "GET";
        body = undefined;
        continue;
      }
      return { url: url.href, status: res.status, html: await res.text() };
    }
    throw new Error("too many redirects");
  }

  /** Submit the form whose action matches, with the given fields (e.g. the clicked button's name/value). */
  submit(page: { url: string; html: string }, actionPattern: RegExp, fields: Record<string, string>, stopAt?: (u: string) => boolean) {
    const actions = [...page.html.matchAll(/<form[^>]*action="([^"]+)"/g)].map((m) => m[1]!.replace(/&amp;/g, "&"));
    const action = actions.find((a) => actionPattern.test(a));
    if (!action) throw new Error(`no form matching ${actionPattern} on ${page.url}:\n${page.html.slice(0, 2000)}`);
    return this.go(new URL(action, page.url).href, { method: "POST", form: fields }, stopAt);
  }
}

export interface GatewayLogin {
  tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
  config: client.Configuration;
  consentHtml: string;
  loginHtml: string;
}

/** What a gateway does: discovery, PKCE, send the browser, redeem the code. */
export async function gatewayConfig(portalUrl: string, gw = GATEWAY) {
  return client.discovery(new URL(portalUrl), gw.id, gw.secret, client.ClientSecretBasic(gw.secret), { execute: [client.allowInsecureRequests] });
}

export async function loginThroughPortal(
  portalUrl: string,
  opts: { user?: string; scope?: string; gw?: typeof GATEWAY; browser?: Browser; decision?: "allow" | "deny" } = {},
): Promise<{ callback: URL; verifier: string; state: string; config: client.Configuration; consentHtml: string; loginHtml: string; browser: Browser }> {
  const gw = opts.gw ?? GATEWAY;
  const browser = opts.browser ?? new Browser();
  const config = await gatewayConfig(portalUrl, gw);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: gw.redirect,
    scope: opts.scope ?? "openid profile email offline_access proxy",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    prompt: "consent",
  });
  const atCallback = (u: string) => u.startsWith(gw.redirect);
  let page = await browser.go(authUrl.href, {}, atCallback);
  let loginHtml = "";
  if (/Continue to sign in/.test(page.html)) {
    loginHtml = page.html;
    page = await browser.submit(page, /\/login$/, {}, atCallback);
    // the development IdP's user list
    page = await browser.submit(page, /\/dev-idp\/interaction\/.+\/login$/, { sub: opts.user ?? "alice" }, atCallback);
  }
  let consentHtml = "";
  if (!atCallback(page.url)) {
    consentHtml = page.html;
    if (!/Allow/.test(page.html)) throw new Error(`expected the consent page, got ${page.status} at ${page.url}:\n${page.html.slice(0, 3000)}`);
    page = await browser.submit(page, /\/confirm$/, { decision: opts.decision ?? "allow" }, atCallback);
  }
  if (!atCallback(page.url)) throw new Error(`did not return to the gateway: ${page.status} ${page.url}\n${page.html.slice(0, 3000)}`);
  return { callback: new URL(page.url), verifier, state, config, consentHtml, loginHtml, browser };
}

export async function redeem(r: Awaited<ReturnType<typeof loginThroughPortal>>) {
  return client.authorizationCodeGrant(r.config, r.callback, { pkceCodeVerifier: r.verifier, expectedState: r.state });
}

/** Sign in to the consoles as a development user; returns the page reached (`next`) and the session's CSRF token. */
export async function consoleLogin(portalUrl: string, user: string, next = "/account", browser = new Browser()) {
  let page = await browser.go(`${portalUrl}/login?next=${encodeURIComponent(next)}`);
  page = await browser.submit(page, /\/dev-idp\/interaction\/.+\/login$/, { sub: user });
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)?.[1];
  return { browser, page, csrf: csrf ?? null };
}
