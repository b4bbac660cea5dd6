/**
 * A third-party OpenID provider for end-to-end tests: Glewlwyd (Debian package `glewlwyd`, an
 * independent C implementation), started on 127.0.0.1 in its own temporary directory with a
 * SQLite database, provisioned through its admin API (plugin, users with custom claims, clients),
 * and run as `nobody` when the tests run as root. Every HTTP call has a timeout; stop() kills it.
 *
 * A person's sign-in is driven through Glewlwyd's login API (the web app it serves is JavaScript):
 * POST /api/auth (password) sets its session cookie, PUT /api/auth/grant records consent, and the
 * authorization endpoint then answers with a redirect to the portal carrying the code.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "./portalHarness";

const BIN = "/usr/bin/glewlwyd";
const SCHEMA = "/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3";
const MODULES = "/usr/lib/glewlwyd";
export const PLUGIN = "oidc";

export const glewlwydAvailable = (): boolean => fs.existsSync(BIN) && fs.existsSync(SCHEMA) && spawnSync("sqlite3", ["-version"]).status === 0;

export interface GlewlwydUser {
  username: string;
  password: string;
  name?: string;
  email?: string;
  given_name?: string;
  family_name?: string;
  idp_name?: string;
  eduperson_unique_id?: string;
  eduperson_entitlement?: string[];
}

export interface GlewlwydClient {
  client_id: string;
  redirect_uri: string[];
  /** client_secret_basic, client_secret_post, private_key_jwt */
  token_endpoint_auth_method: string[];
  client_secret?: string;
  jwks_uri?: string;
}

/** The user properties the portal reads, stored by the database backend and released as claims. */
const CUSTOM = ["given_name", "family_name", "idp_name", "eduperson_unique_id", "eduperson_entitlement"] as const;
export const SCOPES = ["openid", "profile", "email", "eduperson_entitlement"];

const timeout = (ms = 10_000) => AbortSignal.timeout(ms);

export class Glewlwyd {
  private child: ChildProcess | undefined;
  private log = "";
  private adminCookie = "";
  readonly issuer: string;
  readonly base: string;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {
    this.base = `http://127.0.0.1:${port}`;
    this.issuer = `${this.base}/api/${PLUGIN}`;
  }

  static async start(): Promise<Glewlwyd> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certbridge-glewlwyd-"));
    const g = new Glewlwyd(dir, await freePort());
    try {
      g.initDatabase();
      g.writeConfig();
      await g.run();
      await g.provision();
      return g;
    } catch (e) {
      await g.cleanup();
      throw e;
    }
  }

  output(): string {
    return this.log;
  }

  private get db() {
    return path.join(this.dir, "glewlwyd.db");
  }

  private initDatabase() {
    const sql = fs.readFileSync(SCHEMA, "utf8");
    const dataFormat: Record<string, unknown> = {};
    for (const p of CUSTOM) dataFormat[p] = { multiple: p === "eduperson_entitlement", read: true, write: true, "profile-read": true, "profile-write": false };
    const userModule = JSON.stringify({ "use-glewlwyd-connection": true, "data-format": dataFormat });
    const extra = `UPDATE g_user_module_instance SET gumi_parameters='${userModule.replace(/'/g, "''")}' WHERE gumi_name='database';\n`;
    const r = spawnSync("sqlite3", [this.db], { input: sql + extra, encoding: "utf8", timeout: 20_000 });
    if (r.status !== 0) throw new Error(`sqlite3 failed: ${r.stderr}`);
  }

  private writeConfig() {
    const conf = `port=${this.port}
bind_address="127.0.0.1"
external_url="${this.base}"
login_url="login.html"
api_prefix="api"
allow_origin="*"
log_mode="console"
log_level="INFO"
cookie_secure=0
cookie_same_site="empty"
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=false
login_api_enabled=true
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="${MODULES}/user"
client_module_path="${MODULES}/client"
user_auth_scheme_module_path="${MODULES}/scheme"
plugin_module_path="${MODULES}/plugin"
hash_algorithm="SHA512"
database = { type = "sqlite3"; path = "${this.db}"; };
`;
    fs.writeFileSync(path.join(this.dir, "glewlwyd.conf"), conf);
    if (process.getuid?.() === 0) {
      // Run unprivileged: the directory and the database belong to nobody.
      for (const f of [this.dir, this.db, path.join(this.dir, "glewlwyd.conf")]) fs.chownSync(f, 65534, 65534);
    }
  }

  /** Start (or restart) the server and wait until it answers. */
  async run(): Promise<void> {
    const args = ["-c", path.join(this.dir, "glewlwyd.conf"), "-m", "console", "-l", "INFO"];
    const [cmd, argv] = process.getuid?.() === 0 ? ["setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", BIN, ...args]] : [BIN, args];
    this.child = spawn(cmd, argv as string[], { cwd: this.dir, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (d: Buffer) => (this.log += d.toString()));
    this.child.stderr!.on("data", (d: Buffer) => (this.log += d.toString()));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`glewlwyd exited (${this.child.exitCode}):\n${this.log}`);
      try {
        if ((await fetch(`${this.base}/config`, { signal: timeout(2000) })).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`glewlwyd did not start:\n${this.log}`);
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill("SIGTERM");
    const t = setTimeout(() => c.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
  }

  async cleanup(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private async api(method: string, p: string, body: unknown, cookie = this.adminCookie): Promise<Response> {
    const res = await fetch(`${this.base}/api${p}`, {
      method,
      headers: { "content-type": "application/json", ...(cookie ? { cookie } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: timeout(),
    });
    return res;
  }

  private async must(method: string, p: string, body: unknown): Promise<void> {
    const res = await this.api(method, p, body);
    if (!res.ok) throw new Error(`glewlwyd ${method} ${p}: ${res.status} ${await res.text()}\n${this.log}`);
  }

  /** Log in to its API with a password; returns the session cookie. */
  async session(username: string, password: string): Promise<string> {
    const res = await this.api("POST", "/auth/", { username, password }, "");
    if (!res.ok) throw new Error(`glewlwyd login of ${username}: ${res.status} ${await res.text()}`);
    return res.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  }

  private async provision() {
    this.adminCookie = await this.session("admin", "password");
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const claim = (name: string) => ({ name, "user-property": name, type: "string", mandatory: true, "on-demand": false });
    await this.must("POST", "/mod/plugin/", {
      module: "oidc",
      name: PLUGIN,
      display_name: "OpenID Connect",
      parameters: {
        iss: this.issuer,
        "jwt-type": "rsa",
        "jwt-key-size": "256",
        key: privateKey.export({ type: "pkcs8", format: "pem" }),
        cert: publicKey.export({ type: "spki", format: "pem" }),
        "access-token-duration": 3600,
        "refresh-token-duration": 1209600,
        "code-duration": 600,
        "refresh-token-rolling": true,
        "allow-non-oidc": false,
        "auth-type-code-enabled": true,
        "auth-type-token-enabled": false,
        "auth-type-id-token-enabled": true,
        "auth-type-none-enabled": false,
        "auth-type-password-enabled": false,
        "auth-type-client-enabled": false,
        "auth-type-refresh-enabled": true,
        "subject-type": "public",
        "pkce-allowed": true,
        "jwks-show": true,
        "name-claim": "mandatory",
        "email-claim": "mandatory",
        "scope-claim": "no",
        claims: CUSTOM.map(claim),
        "allowed-scope": SCOPES,
        // private_key_jwt: client assertions, verified with the key set at the client's jwks_uri.
        "request-parameter-allow": true,
        "request-uri-allow-https-non-secure": true,
        "request-maximum-exp": 3600,
        "client-jwks_uri-parameter": "jwks_uri",
      },
    });
    for (const s of SCOPES.filter((s) => s !== "openid")) {
      await this.must("POST", "/scope/", { name: s, display_name: s, description: s, password_required: false, scheme: {} });
    }
  }

  async addUser(u: GlewlwydUser): Promise<void> {
    const { username, password, ...props } = u;
    await this.must("POST", "/user/", { username, password, enabled: true, scope: SCOPES, ...props });
  }

  private readonly clients = new Map<string, GlewlwydClient>();

  private clientBody(c: GlewlwydClient) {
    return { name: c.client_id, confidential: true, enabled: true, scope: [], authorization_type: ["code", "refresh_token"], ...c };
  }

  async addClient(c: GlewlwydClient): Promise<void> {
    await this.must("POST", "/client/", this.clientBody(c));
    this.clients.set(c.client_id, c);
  }

  /** Another portal (another port) using the same client: add its redirect URIs. */
  async updateRedirects(clientId: string, more: string[]): Promise<void> {
    const c = this.clients.get(clientId)!;
    c.redirect_uri = [...c.redirect_uri, ...more];
    await this.must("PUT", `/client/${encodeURIComponent(clientId)}`, this.clientBody(c));
  }

  /**
   * A person signing in at the authorization URL the portal sent the browser to: password login,
   * consent to the scopes, then the authorization endpoint's redirect (to the portal's callback).
   */
  async authorize(authUrl: string, username: string, password: string): Promise<string> {
    const url = new URL(authUrl);
    const cookie = await this.session(username, password);
    const clientId = url.searchParams.get("client_id")!;
    const scope = url.searchParams.get("scope") ?? "";
    const g = await this.api("PUT", `/auth/grant/${encodeURIComponent(clientId)}`, { scope }, cookie);
    if (!g.ok) throw new Error(`glewlwyd grant: ${g.status} ${await g.text()}`);
    let next = url.href;
    for (let hop = 0; hop < 3; hop++) {
      const res = await fetch(next, { redirect: "manual", headers: { cookie }, signal: timeout() });
      const location = res.headers.get("location");
      if (res.status !== 302 || !location) throw new Error(`glewlwyd authorization: ${res.status} ${location} ${await res.text()}\n${this.log.slice(-3000)}`);
      const to = new URL(location, next);
      // Its web app's login page returns to callback_url with g_continue once the person is signed in.
      if (to.origin === this.base && to.pathname.endsWith("/login.html")) {
        next = `${to.searchParams.get("callback_url")}&g_continue`;
        continue;
      }
      return to.href;
    }
    throw new Error("glewlwyd authorization: too many redirects");
  }
}
