/**
 * The embedded development IdP: a second oidc-provider, mounted at /dev-idp,
 * standing in for EGI Check-in when no upstream is configured, so that a
 * newcomer sees the whole flow with `npm start`. Test users come from a JSON
 * file; a login is one click. It says so on every page, and config refuses it
 * under NODE_ENV=production unless allowed.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import Provider, { type Configuration, type InteractionResults } from "oidc-provider";
import { z } from "zod";
import { invalidConfig } from "./errors";
import { escapeHtml, page, errorPage, loggedOutPage, portalPage } from "./oidc/pages";
import { prismaAdapterFactory } from "./oidc/adapter";
import { signingJwk } from "./oidc/signingKeys";
import { finishInteraction } from "./oidc/interactions";
import type { Db } from "./db";

export const devUser = z.object({
  sub: z.string().min(1),
  name: z.string().min(1).optional(),
  given_name: z.string().optional(),
  family_name: z.string().optional(),
  email: z.email().optional(),
  eduperson_unique_id: z.string().optional(),
  eduperson_entitlement: z.array(z.string()).optional(),
  voperson_id: z.string().optional(),
  idp_name: z.string().optional(),
});
export type DevUser = z.infer<typeof devUser>;

export function loadDevUsers(file: string): DevUser[] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw invalidConfig(`CERTBRIDGE_DEV_USERS_FILE: cannot read ${file}: ${(e as Error).message}`, e);
  }
  const r = z.array(devUser).min(1).safeParse(raw);
  if (!r.success) throw invalidConfig(`CERTBRIDGE_DEV_USERS_FILE: ${file}: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return r.data;
}

export interface DevIdp {
  provider: Provider;
  clientId: string;
  clientSecret: string;
  users: DevUser[];
}

const SCOPE_CLAIMS = {
  openid: ["sub"],
  profile: ["name", "given_name", "family_name", "idp_name"],
  email: ["email"],
  eduperson_entitlement: ["eduperson_entitlement"],
  eduperson_unique_id: ["eduperson_unique_id"],
  voperson_id: ["voperson_id"],
};

/**
 * State (sessions, codes) and keys live in the database like the portal's, so
 * every worker process and every restart sees the same development IdP.
 */
export async function createDevIdp(opts: { issuer: string; usersFile: string; redirectUri: string; cookieKeys: string[]; db: Db; kek: Buffer }): Promise<DevIdp> {
  const users = loadDevUsers(opts.usersFile);
  const clientId = "certbridge-portal";
  // The same in every worker: derived, not random.
  const clientSecret = crypto.createHmac("sha256", opts.kek).update("certbridge:dev-idp-client-secret").digest("base64url");
  const jwk = await signingJwk(opts.db, opts.kek, "dev-idp");
  const configuration: Configuration = {
    adapter: prismaAdapterFactory(opts.db, opts.kek, "DevIdp"),
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [opts.redirectUri],
        // the portal's signed-out page offers to end this IdP's session too (RP-initiated logout)
        post_logout_redirect_uris: [new URL("/signed-out", opts.redirectUri).href],
        grant_types: ["authorization_code"],
        response_types: ["code"],
      },
    ],
    async findAccount(_ctx, id) {
      const user = users.find((u) => u.sub === id);
      return user ? { accountId: id, claims: async () => ({ ...user, idp_name: user.idp_name ?? "Certbridge Development IdP" }) } : undefined;
    },
    claims: SCOPE_CLAIMS,
    scopes: Object.keys(SCOPE_CLAIMS),
    // Check-in puts the claims in the ID token too; so does this stand-in.
    conformIdTokenClaims: false,
    interactions: { url: (_ctx, i) => `/dev-idp/interaction/${i.uid}` },
    // Own cookie names: it shares the portal's host, and must not overwrite the portal's session.
    cookies: { keys: opts.cookieKeys, names: { session: "_devidp_session", interaction: "_devidp_interaction", resume: "_devidp_interaction_resume" } },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = "html";
          ctx.body = portalPage(
            "Sign out of the development IdP?",
            `<h1>Sign out of the development IdP?</h1><p>This ends your sign-in at the development IdP, so the next sign-in asks who you are again.</p>${form}<p class="actions"><button type="submit" form="op.logoutForm" value="yes" name="logout" class="primary">Sign out</button><button type="submit" form="op.logoutForm">Stay signed in</button></p>`,
            { devBanner: true },
          );
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = "html";
          ctx.body = loggedOutPage({ devBanner: true });
        },
      },
    },
    jwks: { keys: [jwk as never] },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 8 * 3600, Grant: 8 * 3600 },
    async renderError(ctx, out) {
      ctx.type = "html";
      ctx.body = errorPage(out.error ?? "error", out.error_description ?? "error");
    },
  };
  const provider = new Provider(opts.issuer, configuration);

  // One-click login and automatic consent, on pages that say what this is.
  /** The portal's one way of ending an interaction, then back to where the request left off. */
  const finish = async (ctx: { status: number; redirect(url: string): void }, uid: string, result: InteractionResults, merge: boolean) => {
    const { returnTo } = await finishInteraction(provider, uid, result, { merge });
    ctx.status = 303;
    ctx.redirect(returnTo);
  };
  provider.use(async (ctx, next) => {
    const m = /^\/interaction\/([\w-]+)(\/login)?$/.exec(ctx.path);
    if (!m) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (ctx.method === "GET" && !m[2]) {
      if (details.prompt.name === "login") {
        const buttons = users
          .map((u) => `<p><button name="sub" value="${escapeHtml(u.sub)}">${escapeHtml(u.name ?? `${u.given_name ?? ""} ${u.family_name ?? ""}`)}</button> <small>${escapeHtml(u.email ?? u.sub)}</small></p>`)
          .join("");
        ctx.type = "html";
        ctx.body = page("Development IdP: choose a test user", `<form method="post" action="/dev-idp/interaction/${escapeHtml(details.uid)}/login">${buttons}</form>`, { devBanner: true });
        return;
      }
      // consent: the development IdP grants what was asked
      const grant = details.grantId ? (await provider.Grant.find(details.grantId))! : new provider.Grant({ accountId: details.session!.accountId, clientId: details.params.client_id as string });
      const missing = details.prompt.details.missingOIDCScope as string[] | undefined;
      if (missing) grant.addOIDCScope(missing.join(" "));
      const grantId = await grant.save();
      return finish(ctx, details.uid, { consent: { grantId } }, true);
    }
    if (ctx.method === "POST" && m[2]) {
      const body = await new Promise<string>((resolve) => {
        let data = "";
        ctx.req.on("data", (c: Buffer) => (data += c.toString("utf8")));
        ctx.req.on("end", () => resolve(data));
      });
      const sub = new URLSearchParams(body).get("sub");
      if (!sub || !users.some((u) => u.sub === sub)) {
        ctx.status = 400;
        ctx.type = "html";
        ctx.body = errorPage("invalid_request", "unknown test user");
        return;
      }
      return finish(ctx, details.uid, { login: { accountId: sub } }, false);
    }
    return next();
  });
  return { provider, clientId, clientSecret, users };
}
