/**
 * Example gateway: what a DIRAC-like science gateway does to get a proxy for
 * its user from Certbridge. Copy it; it depends only on openid-client and
 * pkijs (for the CSR).
 *
 *   1. "Log in" sends the browser to Certbridge (code flow + PKCE).
 *   2. The callback redeems the code for tokens.
 *   3. The gateway makes an RSA key pair *locally* and a CSR for it.
 *   4. POST /getproxy with the access token and the CSR; the portal returns
 *      the signed proxy and its chain, never seeing the private key.
 *   5. Proxy cert + private key + chain are saved as an X509_USER_PROXY file,
 *      mode 0600, written atomically.
 *
 * Run: PORTAL_URL=http://localhost:3000 GATEWAY_CLIENT_ID=... GATEWAY_CLIENT_SECRET=... \
 *      node --import tsx examples/gateway/server.ts        (then open http://localhost:4000)
 * Register the gateway first: npm run cli -- client add --name "Example Gateway" \
 *      --redirect-uri http://localhost:4000/callback
 */
import crypto, { webcrypto } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import * as asn1js from "asn1js";
import * as client from "openid-client";
import * as pkijs from "pkijs";

const PORTAL_URL = process.env.PORTAL_URL ?? "http://localhost:3000";
const CLIENT_ID = process.env.GATEWAY_CLIENT_ID ?? "example-gateway";
const CLIENT_SECRET = process.env.GATEWAY_CLIENT_SECRET ?? "";
const PORT = Number(process.env.GATEWAY_PORT ?? 4000);
const PROXY_DIR = path.resolve(process.env.PROXY_DIR ?? "./proxies");
const PROXY_LIFETIME = process.env.PROXY_LIFETIME ?? "43200"; // seconds
const REDIRECT_URI = `http://localhost:${PORT}/callback`;

pkijs.setEngine("node", new pkijs.CryptoEngine({ name: "node", crypto: webcrypto as unknown as Crypto }));

// --- OpenID Connect: discovery once, then per-login PKCE/state kept in a session -------------

const config = await client.discovery(new URL(PORTAL_URL), CLIENT_ID, CLIENT_SECRET, client.ClientSecretBasic(CLIENT_SECRET), {
  // Only for a portal on plain-http localhost during development.
  execute: PORTAL_URL.startsWith("http:") ? [client.allowInsecureRequests] : [],
});

interface Session {
  verifier?: string;
  state?: string;
  /** VOMS attributes to ask for, voms-proxy-init style: "biomed" or "biomed:/biomed/Role=pilot". */
  voname?: string;
}
const sessions = new Map<string, Session>();

function session(req: http.IncomingMessage, res: http.ServerResponse): Session {
  const id = /(?:^|;\s*)gw_session=([\w-]+)/.exec(req.headers.cookie ?? "")?.[1];
  if (id && sessions.has(id)) return sessions.get(id)!;
  const fresh = crypto.randomUUID();
  sessions.set(fresh, {});
  res.setHeader("set-cookie", `gw_session=${fresh}; Path=/; HttpOnly; SameSite=Lax`);
  return sessions.get(fresh)!;
}

// --- The proxy: a local key, a CSR, /getproxy, an atomic 0600 file -----------------------------

async function makeKeyAndCsr() {
  const keys = (await webcrypto.subtle.generateKey(
    { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["sign", "verify"],
  )) as CryptoKeyPair;
  const csr = new pkijs.CertificationRequest();
  // The portal ignores the CSR's subject: the proxy's subject comes from the user's identity.
  csr.subject.typesAndValues.push(new pkijs.AttributeTypeAndValue({ type: "2.5.4.3", value: new asn1js.Utf8String({ value: "example gateway" }) }));
  await csr.subjectPublicKeyInfo.importKey(keys.publicKey);
  await csr.sign(keys.privateKey, "SHA-256");
  const pem = (label: string, der: ArrayBuffer) =>
    `-----BEGIN ${label}-----\n${Buffer.from(der).toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
  return {
    csrPem: pem("CERTIFICATE REQUEST", csr.toSchema(true).toBER(false)),
    keyPem: pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)),
  };
}

async function getProxy(accessToken: string, voname?: string) {
  const { csrPem, keyPem } = await makeKeyAndCsr();
  const res = await fetch(`${PORTAL_URL}/getproxy`, {
    method: "POST",
    headers: { authorization: `Bearer ${accessToken}` },
    body: new URLSearchParams({ certreq: csrPem, proxylifetime: PROXY_LIFETIME, ...(voname ? { voname } : {}) }),
  });
  if (!res.ok) {
    const err = (await res.json()) as { error: string; error_description: string };
    throw new Error(`/getproxy refused: ${err.error}: ${err.error_description}`);
  }
  const certs = (await res.text()).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
  // X509_USER_PROXY layout: proxy certificate, its private key, then the chain.
  return { file: certs[0] + keyPem + certs.slice(1).join(""), notAfter: res.headers.get("x-proxy-not-after") };
}

/**
 * The proxy file's name for a user: their subject identifier when it is a plain token, else a
 * hash of it, so no identifier can name a path outside PROXY_DIR (no "/", "..", NUL or spaces).
 */
function proxyFileName(sub: string): string {
  return /^[A-Za-z0-9_-]{1,64}$/.test(sub) ? `x509up_${sub}` : `x509up_h${crypto.createHash("sha256").update(sub).digest("hex").slice(0, 32)}`;
}

function saveProxy(sub: string, content: string): string {
  fs.mkdirSync(PROXY_DIR, { recursive: true, mode: 0o700 });
  const file = path.join(PROXY_DIR, proxyFileName(sub));
  const tmp = `${file}.${crypto.randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o600, flag: "wx" }); // never readable by others, even briefly
  fs.renameSync(tmp, file);
  return file;
}

// --- Pages -------------------------------------------------------------------------------------

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head><body style="font-family:system-ui;max-width:40rem;margin:2rem auto"><h1>${esc(title)}</h1>${body}</body></html>`;

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", `http://localhost:${PORT}`);
  const s = session(req, res);
  try {
    if (url.pathname === "/") {
      res.end(
        page(
          "Example Gateway",
          `<p>Run grid jobs with your federated identity.</p>
<form action="/login" method="get"><p><label for="voname">VO (optional, e.g. biomed or biomed:/biomed/Role=pilot)</label><br>
<input id="voname" name="voname" size="40"></p><p><button type="submit">Log in with Certbridge</button></p></form>`,
        ),
      );
    } else if (url.pathname === "/login") {
      s.voname = url.searchParams.get("voname")?.trim() || undefined;
      s.verifier = client.randomPKCECodeVerifier();
      s.state = client.randomState();
      const target = client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI,
        scope: "openid profile offline_access proxy",
        code_challenge: await client.calculatePKCECodeChallenge(s.verifier),
        code_challenge_method: "S256",
        state: s.state,
        prompt: "consent", // required for a refresh token (offline_access)
      });
      res.writeHead(303, { location: target.href }).end();
    } else if (url.pathname === "/callback") {
      const tokens = await client.authorizationCodeGrant(config, url, { pkceCodeVerifier: s.verifier, expectedState: s.state });
      const idToken = tokens.claims()!;
      // The portal's ID token carries only the identifier; the name comes from userinfo (scope profile).
      const info = await client.fetchUserInfo(config, tokens.access_token, idToken.sub).catch(() => null);
      const name = [info?.name, idToken.name, info?.preferred_username].find((n): n is string => typeof n === "string" && n.length > 0) ?? "(no name given)";
      const proxy = await getProxy(tokens.access_token, s.voname);
      const file = saveProxy(idToken.sub, proxy.file);
      res.end(page("Proxy saved", `<p>Signed in as <strong id="user-name">${esc(name)}</strong>.</p>
<p>Proxy file: <code id="proxy-file">${esc(file)}</code></p><p>Valid until: <span id="not-after">${esc(proxy.notAfter ?? "")}</span></p>
<p>VOMS attributes: <span id="voms">${esc(s.voname ?? "none requested")}</span></p>
<p>Refresh token kept for renewal: ${tokens.refresh_token ? "yes" : "no"}</p>`));
    } else {
      res.writeHead(404).end(page("Not found", ""));
    }
  } catch (e) {
    // The portal's OAuth error (e.g. access_denied when the user clicked Deny) says what happened.
    const message = e instanceof client.AuthorizationResponseError ? `${e.error}: ${e.error_description ?? ""}` : (e as Error).message;
    res.writeHead(502).end(page("Could not get a proxy", `<p id="error">${esc(message)}</p><p><a href="/">Try again</a></p>`));
  }
});

server.listen(PORT, "localhost", () => console.log(`example gateway on http://localhost:${PORT} (portal ${PORTAL_URL})`));
