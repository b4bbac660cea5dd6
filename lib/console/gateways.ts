/** Gateways (OAuth clients) in the admin console: list, detail, register, edit, suspend, rotate, delete. */
import { z } from "zod";
import type { Certbridge } from "../certbridge";
import { invalidRequest, notFound } from "../errors";
import { countProxiesByClient, searchAuditEvents } from "../db";
import { CLI_CLIENT_ID, CLIENT_SCOPES, allowedVosOf, findClient, listClients, registerClient, removeClient, rotateClientSecret, setClientStatus, setClientTokenPolicy, tokenPolicyOf } from "../oidc/clients";
import { tokenPolicySchema } from "../oidc/scopePolicy";
import { COMPAT_PROFILES } from "../oidc/compatProfile";
import { openSealedKey, sealKey } from "../pki/seal";
import { cookieValue } from "./session";
import { describeAuditRows } from "./audit";
import type { ConsoleGate, Viewer } from "./gate";
import { DAY, adminActor, lifetimeSeconds, optionalText, parseForm, reasonField, text, type FormRequest } from "./forms";
import { displayText } from "../displayText";

export const SECRET_FLASH_COOKIE = "certbridge_secret";
const SECRET_FLASH_CONTEXT = "certbridge:client-secret-flash";

/** Form fields of the client editor (the admin console), mapped onto the registry's input. */
const clientForm = z.object({
  id: optionalText(64),
  name: text(100),
  homepage: optionalText(300),
  contact: optionalText(200),
  type: z.enum(["confidential", "public"]),
  redirect_uris: text(4000),
  scopes: z.array(z.enum(CLIENT_SCOPES)).min(1, "choose at least one scope"),
  vo_policy: z.enum(["any", "listed"]).default("any"),
  allowed_vos: z.array(z.string()).default([]),
  max_lifetime: text(20).min(1, "give a maximum proxy lifetime"),
  compat_profile: z.enum(["none", ...COMPAT_PROFILES]).default("none"),
  reason: reasonField,
});

/** Form fields of the token policy editor (tokens for compute elements). */
const tokenPolicyForm = z.object({
  format: z.enum(["opaque", "wlcg"]),
  compute: z.literal("on").optional(),
  compute_groups: text(4000),
  audiences: text(8000),
  lifetime: text(20).min(1, "give an access token lifetime"),
  introspection: z.literal("on").optional(),
  device_grant: z.literal("on").optional(),
  exchange: z.literal("on").optional(),
  exchange_clients: text(4000),
  exchange_audiences: text(8000),
  exchange_scopes: text(4000),
  reason: reasonField,
});

const lines = (t: string) => t.split(/\s+/).map((x) => x.trim()).filter(Boolean);

/** Who changed a gateway and why, as the client registry records it. */
function clientAudit(viewer: Viewer, ip: string | null, reason: string) {
  const who = adminActor(viewer);
  return { actor: who.actor, ip, reason: `${reason} (by ${who.by})` };
}

export class GatewayAdmin {
  constructor(
    private readonly cb: Certbridge,
    private readonly gate: ConsoleGate,
  ) {}

  async clients() {
    const since = new Date(this.cb.clock().getTime() - 30 * DAY);
    const [clients, counts] = await Promise.all([listClients(this.cb.db), countProxiesByClient(this.cb.db, since, this.cb.clock())]);
    const byId = new Map(counts.map((c) => [c.clientId, c.count]));
    return clients.map((c) => ({ ...c, name: displayText(c.name), redirectUris: JSON.parse(c.redirectUris) as string[], allowedVos: allowedVosOf(c), proxies30d: byId.get(c.id) ?? 0 }));
  }

  async client(id: string) {
    const c = await findClient(this.cb.db, id);
    if (!c) throw notFound(`no client ${id}`);
    const recent = await describeAuditRows(this.cb.db, await searchAuditEvents(this.cb.db, { clientId: id, action: "client." }, 20));
    return {
      ...c,
      name: displayText(c.name),
      redirectUris: JSON.parse(c.redirectUris) as string[],
      allowedVos: allowedVosOf(c),
      scopes: c.scopes.split(" "),
      tokenPolicy: tokenPolicyOf(c),
      builtIn: c.id === CLI_CLIENT_ID,
      recent,
    };
  }

  get servedVos(): string[] {
    return [...this.cb.vos.keys()];
  }

  /** Register (no `id`) or update a client from the editor form; returns the secret when one was made. */
  async saveClient(req: FormRequest, existingId?: string): Promise<{ id: string; secret?: string }> {
    const viewer = await this.gate.require(req, "admin", existingId ? "client.update" : "client.register");
    const f = parseForm(clientForm, req.form, ["scopes", "allowed_vos"]);
    const unknownVos = f.allowed_vos.filter((v) => !this.cb.vos.has(v));
    if (unknownVos.length) throw invalidRequest(`allowed VOs: ${unknownVos.join(", ")} not served here`);
    const { client, secret } = await registerClient(
      this.cb.db,
      this.cb.config.kek,
      {
        id: existingId ?? f.id,
        name: f.name,
        homepage: f.homepage,
        contact: f.contact,
        public: f.type === "public",
        redirectUris: f.redirect_uris.split(/\s+/).filter(Boolean),
        scopes: f.scopes,
        maxProxyLifetimeSeconds: lifetimeSeconds(f.max_lifetime, "maximum proxy lifetime"),
        allowedVos: f.vo_policy === "listed" ? f.allowed_vos : undefined,
        compatProfile: f.compat_profile === "none" ? undefined : f.compat_profile,
      },
      clientAudit(viewer, req.ip, f.reason),
      { update: existingId !== undefined },
    );
    return { id: client.id, secret };
  }

  /** The token policy editor: format, audiences, compute.* permission and groups, lifetime, introspection, device grant, exchange. Audited. */
  async saveTokenPolicy(req: FormRequest, id: string): Promise<void> {
    const viewer = await this.gate.require(req, "admin", "client.token_policy");
    const f = parseForm(tokenPolicyForm, req.form);
    const exchangeAudiences = lines(f.exchange_audiences);
    const r = tokenPolicySchema.safeParse({
      format: f.format,
      compute: f.compute === "on",
      computeGroups: lines(f.compute_groups),
      ...(lines(f.audiences).length ? { audiences: lines(f.audiences) } : {}),
      accessTokenLifetimeSeconds: lifetimeSeconds(f.lifetime, "access token lifetime"),
      introspection: f.introspection === "on",
      deviceGrant: f.device_grant === "on",
      ...(f.exchange === "on"
        ? { exchange: { subjectClients: lines(f.exchange_clients), scopes: lines(f.exchange_scopes), ...(exchangeAudiences.length ? { audiences: exchangeAudiences } : {}) } }
        : {}),
    });
    if (!r.success) throw invalidRequest(`token policy: ${r.error.issues.map((i) => `${i.path.join(".") || "policy"}: ${i.message}`).join("; ")}`);
    await setClientTokenPolicy(this.cb.db, id, r.data, clientAudit(viewer, req.ip, f.reason));
  }

  async changeClient(req: FormRequest, id: string, op: "suspend" | "activate" | "rotate" | "delete"): Promise<{ secret?: string }> {
    const viewer = await this.gate.require(req, "admin", `client.${op}`);
    const f = parseForm(z.object({ reason: reasonField, ...(op === "delete" ? { confirm: z.literal(id, `type the client id (${id}) to confirm`) } : {}) }), req.form);
    const audit = clientAudit(viewer, req.ip, f.reason);
    if (op === "rotate") return { secret: await rotateClientSecret(this.cb.db, this.cb.config.kek, id, audit) };
    if (op === "delete") await removeClient(this.cb.db, id, audit);
    else await setClientStatus(this.cb.db, id, op === "suspend" ? "suspended" : "active", audit);
    return {};
  }

  /**
   * A new client secret travels to the one page that shows it in a sealed,
   * short-lived cookie scoped to that page, which clears it as it renders:
   * shown once, never stored in clear, never in a URL or a log.
   */
  secretFlash(clientId: string, secret: string): { name: string; value: string; path: string; maxAge: number } {
    const value = sealKey(this.cb.config.kek, Buffer.from(JSON.stringify({ clientId, secret })), SECRET_FLASH_CONTEXT);
    return { name: SECRET_FLASH_COOKIE, value, path: `/admin/clients/${clientId}/secret`, maxAge: 300 };
  }

  openSecretFlash(cookieHeader: string, clientId: string): string | null {
    const value = cookieValue(cookieHeader, SECRET_FLASH_COOKIE);
    if (!value) return null;
    try {
      const f = z.object({ clientId: z.string(), secret: z.string() }).parse(JSON.parse(Buffer.from(openSealedKey(this.cb.config.kek, value, SECRET_FLASH_CONTEXT)).toString("utf8")));
      return f.clientId === clientId ? f.secret : null;
    } catch {
      return null;
    }
  }
}
