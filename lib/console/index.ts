/**
 * The account and admin consoles' operations. Pages and route handlers call
 * these through the Portal (lib/runtime.ts): each takes already-typed or raw
 * form input, validates it with zod, authorises against the viewer, and does
 * one thing. Every admin mutation and every refusal of one is audited, in the
 * same transaction as the change where the change has one.
 */
import { z } from "zod";
import type { Certbridge } from "../certbridge";
import { CertbridgeError, accessDenied, invalidRequest, notFound } from "../errors";
import {
  countIdentities,
  countProxiesByClient,
  countRevokedCertificates,
  deleteGrantOfAccount,
  findCertificate,
  findIdentityClaims,
  getCaRecord,
  listAuditEvents,
  listGrantsOfAccount,
  listSshKeys,
  listUserCertificatesEndingBefore,
  recordAudit,
  searchAuditEvents,
  type AuditFilter,
} from "../db";
import { searchCertificates } from "../admin/certificates";
import { describeCa } from "../ca/authority";
import { REVOCATION_REASONS, parseRevocationReason, revokeUserCertificate } from "../ca/revocation";
import { CLI_CLIENT_ID, GATEWAY_SCOPES, allowedVosOf, findClient, listClients, registerClient, removeClient, rotateClientSecret, setClientStatus } from "../oidc/clients";
import { decodeCertificate } from "../inspect/certificate";
import { pemBlocks, toPem } from "../pki/der";
import { openSealedKey, sealKey } from "../pki/seal";
import { parseDuration } from "../duration";
import { membershipsFromClaims } from "../voms/membership";
import { parseVomsRequests } from "../voms/proxyExtension";
import { registerSshKey, removeSshKey } from "../ssh/registry";
import { readHostKeyFingerprint, SSH_USER, sshSaveCommand } from "../ssh/server";
import { csrfMatches, isAdministrator, newSession, openSession, sealSession, cookieValue, SESSION_COOKIE, type ConsoleSession } from "./session";

export interface Viewer {
  session: ConsoleSession;
  identity: { id: string; displayName: string; subject: string; email: string | null; issuer: string; sub: string; organisation: string; createdAt: Date; lastSeenAt: Date };
  claims: Record<string, unknown>;
  admin: boolean;
  csrf: string;
}

/** What a mutation's route handler hands over: who, from where, with which form. */
export interface FormRequest {
  cookie: string;
  /** The Origin header (or Referer's origin); must be this portal's. */
  origin: string | null;
  ip: string | null;
  form: URLSearchParams;
}

const DAY = 86400_000;
export const SECRET_FLASH_COOKIE = "certbridge_secret";
const SECRET_FLASH_CONTEXT = "certbridge:client-secret-flash";
const reasonField = z.string().trim().min(3, "say why (at least 3 characters): it goes into the audit log").max(500);

const text = (max: number) => z.string().trim().max(max);
const optionalText = (max: number) =>
  text(max)
    .optional()
    .transform((s) => (s ? s : undefined));

/** Form fields of the client editor (the admin console), mapped onto the registry's input. */
const clientForm = z.object({
  id: optionalText(64),
  name: text(100),
  homepage: optionalText(300),
  contact: optionalText(200),
  type: z.enum(["confidential", "public"]),
  redirect_uris: text(4000),
  scopes: z.array(z.enum(GATEWAY_SCOPES)).min(1, "choose at least one scope"),
  vo_policy: z.enum(["any", "listed"]).default("any"),
  allowed_vos: z.array(z.string()).default([]),
  max_lifetime: text(20).min(1, "give a maximum proxy lifetime"),
  reason: reasonField,
});

function parseForm<T extends z.ZodType>(schema: T, form: URLSearchParams, arrays: readonly string[] = []): z.infer<T> {
  const raw: Record<string, unknown> = {};
  for (const key of new Set(form.keys())) raw[key] = arrays.includes(key) ? form.getAll(key) : form.get(key);
  for (const key of arrays) raw[key] ??= [];
  const r = schema.safeParse(raw);
  if (!r.success) throw invalidRequest(r.error.issues.map((i) => `${i.path.join(".") || "form"}: ${i.message}`).join("; "));
  return r.data;
}

function lifetimeSeconds(textValue: string, field: string): number {
  try {
    return parseDuration(textValue);
  } catch (e) {
    throw invalidRequest(`${field}: ${(e as Error).message}`);
  }
}

const auditQuery = z.object({
  action: z.string().trim().regex(/^[a-z_.]{1,40}$/, "an action is like proxy.issue, or a family like proxy.").optional().or(z.literal("").transform(() => undefined)),
  actor: z.string().trim().max(120).optional().transform((s) => s || undefined),
  outcome: z.enum(["success", "refused", "failure"]).optional().or(z.literal("").transform(() => undefined)),
  client: z.string().trim().max(64).optional().transform((s) => s || undefined),
  identity: z.string().trim().max(64).optional().transform((s) => s || undefined),
  certificate: z.string().trim().max(64).optional().transform((s) => s || undefined),
  from: z.iso.date().optional().or(z.literal("").transform(() => undefined)),
  to: z.iso.date().optional().or(z.literal("").transform(() => undefined)),
  cursor: z.string().max(200).optional(),
});
export type AuditQuery = z.input<typeof auditQuery>;

function auditFilter(q: z.infer<typeof auditQuery>): AuditFilter {
  let before: AuditFilter["before"];
  if (q.cursor) {
    try {
      const { t, i } = z.object({ t: z.iso.datetime(), i: z.string().min(1) }).parse(JSON.parse(Buffer.from(q.cursor, "base64url").toString("utf8")));
      before = { at: new Date(t), id: i };
    } catch (e) {
      throw invalidRequest("the page cursor is invalid; start again from the first page", e);
    }
  }
  return {
    action: q.action,
    actor: q.actor,
    outcome: q.outcome,
    clientId: q.client,
    identityId: q.identity,
    certificateId: q.certificate,
    from: q.from ? new Date(`${q.from}T00:00:00Z`) : undefined,
    // "to" is inclusive for people: up to the end of that day.
    to: q.to ? new Date(new Date(`${q.to}T00:00:00Z`).getTime() + DAY) : undefined,
    before,
  };
}

const AUDIT_COLUMNS = ["at", "action", "outcome", "actor", "identityId", "clientId", "certificateId", "ip", "details"] as const;

/** RFC 4180 field; a leading = + - @ is defused so spreadsheets do not run it as a formula (OWASP CSV injection). */
function csvField(v: string): string {
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export class Consoles {
  constructor(private readonly cb: Certbridge) {}

  /* ---------- sessions and authorisation ---------- */

  /** Start a console session for a person who just signed in. */
  startSession(identityId: string): { name: string; value: string; maxAge: number } {
    const ttl = this.cb.config.console.sessionTtlSeconds;
    return { name: SESSION_COOKIE, value: sealSession(this.cb.config.kek, newSession(identityId, this.cb.clock(), ttl)), maxAge: ttl };
  }

  /** The signed-in person behind a Cookie header, or null. */
  async viewer(cookieHeader: string): Promise<Viewer | null> {
    const session = openSession(this.cb.config.kek, cookieValue(cookieHeader, SESSION_COOKIE), this.cb.clock());
    if (!session) return null;
    const row = await findIdentityClaims(this.cb.db, session.identityId);
    if (!row) return null;
    const { claims: claimsJson, ...identity } = row;
    const claims = JSON.parse(claimsJson) as Record<string, unknown>;
    return { session, identity, claims, admin: isAdministrator(this.cb.config.console, { sub: identity.sub, claims }), csrf: session.csrf };
  }

  /**
   * Gate for every console mutation: a live session, a same-origin request
   * carrying the session's CSRF token, and for admin actions the admin role
   * (decided now, not at sign-in). Refused admin attempts are audited.
   */
  async authorize(req: FormRequest, role: "person" | "admin", action: string): Promise<Viewer> {
    const viewer = await this.viewer(req.cookie);
    if (!viewer) throw new CertbridgeError("access_denied", "You are not signed in (or your session expired). Sign in again and retry.", { status: 401 });
    const ownOrigin = new URL(this.cb.config.publicUrl).origin;
    // The token is the defence; Origin is a second check where the browser sends one ("null" comes from privacy settings).
    const foreignOrigin = req.origin !== null && req.origin !== "null" && req.origin !== ownOrigin;
    if (foreignOrigin || !csrfMatches(viewer.session, req.form.get("csrf"))) {
      throw accessDenied("This form is stale or was sent from another site (CSRF check failed). Reload the page and try again.");
    }
    if (role === "admin" && !viewer.admin) {
      await recordAudit(this.cb.db, { action: "admin.refuse", actor: `user:${viewer.identity.id}`, outcome: "refused", identityId: viewer.identity.id, ip: req.ip, details: { attempted: action } });
      throw accessDenied("Only administrators of this portal may do this.");
    }
    return viewer;
  }

  private actorOf(viewer: Viewer) {
    return { actor: `admin:${viewer.identity.id}`, by: `${viewer.identity.displayName} (${viewer.identity.sub})` };
  }

  /** Who changed a gateway and why, as the client registry records it. */
  private clientAudit(viewer: Viewer, ip: string | null, reason: string) {
    const who = this.actorOf(viewer);
    return { actor: who.actor, ip, reason: `${reason} (by ${who.by})` };
  }

  /* ---------- admin: overview ---------- */

  async overview() {
    const now = this.cb.clock();
    const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    const days = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const from = new Date(today - (29 - i) * DAY);
        return { day: from.toISOString().slice(0, 10), byClient: await countProxiesByClient(this.cb.db, from, new Date(from.getTime() + DAY)) };
      }),
    );
    const [people, people24h, nearExpiry, caRecord, revoked] = await Promise.all([
      countIdentities(this.cb.db, new Date(now.getTime() - 30 * DAY)),
      countIdentities(this.cb.db, new Date(now.getTime() - DAY)),
      listUserCertificatesEndingBefore(this.cb.db, now, new Date(now.getTime() + 2 * DAY), 10),
      getCaRecord(this.cb.db, this.cb.ca.fingerprint),
      countRevokedCertificates(this.cb.db, this.cb.ca.subject, now),
    ]);
    const ca = describeCa(this.cb.ca);
    return {
      now,
      days,
      clients: [...new Set(days.flatMap((d) => d.byClient.map((c) => c.clientId ?? "(portal)")))].sort(),
      totalProxies30d: days.reduce((n, d) => n + d.byClient.reduce((m, c) => m + c.count, 0), 0),
      people: { active30d: people.active, active24h: people24h.active, total: people.total },
      nearExpiry,
      ca: { ...ca, daysLeft: Math.floor((ca.notAfter.getTime() - now.getTime()) / DAY) },
      crl: {
        number: caRecord?.crlNumber ?? 0,
        lastIssued: caRecord?.crlIssuedAt ?? null,
        nextUpdate: caRecord?.crlNextUpdate ?? null,
        lifetimeSeconds: this.cb.config.ca.crlLifetimeSeconds,
        revokedEntries: revoked,
        url: this.cb.config.ca.crlUrl,
      },
    };
  }

  /* ---------- certificates (admin table; the account's own list) ---------- */

  async searchCertificates(params: URLSearchParams, ownerId?: string) {
    const get = (k: string) => params.get(k)?.trim() || undefined;
    const result = await searchCertificates(
      this.cb.db,
      {
        subject: get("subject"),
        serial: get("serial"),
        kind: get("kind") as "user" | "proxy" | undefined,
        status: get("status") as "valid" | "expired" | "revoked" | undefined,
        clientId: get("client"),
        vo: get("vo"),
        keySource: get("key") as "csr" | "server" | undefined,
        identityId: ownerId ?? get("identity"),
        limit: get("limit") ?? 50,
        cursor: get("cursor"),
      },
      this.cb.clock(),
    );
    return result;
  }

  /** One certificate with its decoding and audit trail; with `ownerId`, only that person's. */
  async certificate(id: string, ownerId?: string) {
    const row = await findCertificate(this.cb.db, { id });
    if (!row || (ownerId !== undefined && row.identityId !== ownerId)) throw notFound("no such certificate");
    const block = pemBlocks(row.pem)[0];
    if (!block) throw new CertbridgeError("server_error", `certificate ${id} has no PEM`);
    const decoded = decodeCertificate(block.der);
    const [audit, owner, client] = await Promise.all([
      listAuditEvents(this.cb.db, { certificateId: id, limit: 100 }),
      findIdentityClaims(this.cb.db, row.identityId),
      row.clientId ? findClient(this.cb.db, row.clientId) : Promise.resolve(null),
    ]);
    const issuance = audit.find((a) => a.action === "proxy.issue" || a.action === "certificate.issue");
    const now = this.cb.clock();
    return {
      row: { ...row, state: row.status === "valid" && row.notAfter <= now ? ("expired" as const) : (row.status as "valid" | "revoked") },
      decoded,
      audit,
      requestedBy: issuance ? { actor: issuance.actor, ip: issuance.ip, at: issuance.at } : null,
      owner: owner ? { id: owner.id, displayName: owner.displayName, subject: owner.subject, issuer: owner.issuer } : null,
      client: client ? { id: client.id, name: client.name } : null,
    };
  }

  async certificatePem(id: string, ownerId?: string): Promise<{ filename: string; pem: string }> {
    const row = await findCertificate(this.cb.db, { id });
    if (!row || (ownerId !== undefined && row.identityId !== ownerId)) throw notFound("no such certificate");
    // Only the certificate: sealed private keys never leave through the console.
    return { filename: `${row.kind}-${row.serialHex}.pem`, pem: toPem("CERTIFICATE", pemBlocks(row.pem)[0]!.der) };
  }

  readonly revocationReasons = Object.keys(REVOCATION_REASONS);

  async revokeCertificate(req: FormRequest, id: string) {
    const viewer = await this.authorize(req, "admin", "certificate.revoke");
    const f = parseForm(z.object({ reason: z.string().min(1, "choose a reason"), comment: reasonField, confirm: z.literal("yes", "tick the confirmation box") }), req.form);
    const reason = parseRevocationReason(f.reason);
    const who = this.actorOf(viewer);
    return revokeUserCertificate(this.cb, { id }, reason, { actor: who.actor, comment: `${f.comment} (by ${who.by})`, ip: req.ip ?? undefined });
  }

  /* ---------- clients ---------- */

  async clients() {
    const since = new Date(this.cb.clock().getTime() - 30 * DAY);
    const [clients, counts] = await Promise.all([listClients(this.cb.db), countProxiesByClient(this.cb.db, since, this.cb.clock())]);
    const byId = new Map(counts.map((c) => [c.clientId, c.count]));
    return clients.map((c) => ({ ...c, redirectUris: JSON.parse(c.redirectUris) as string[], allowedVos: allowedVosOf(c), proxies30d: byId.get(c.id) ?? 0 }));
  }

  async client(id: string) {
    const c = await findClient(this.cb.db, id);
    if (!c) throw notFound(`no client ${id}`);
    const recent = await searchAuditEvents(this.cb.db, { clientId: id, action: "client." }, 20);
    return { ...c, redirectUris: JSON.parse(c.redirectUris) as string[], allowedVos: allowedVosOf(c), scopes: c.scopes.split(" "), builtIn: c.id === CLI_CLIENT_ID, recent };
  }

  get servedVos(): string[] {
    return [...this.cb.vos.keys()];
  }

  /** Register (no `id`) or update a client from the editor form; returns the secret when one was made. */
  async saveClient(req: FormRequest, existingId?: string): Promise<{ id: string; secret?: string }> {
    const viewer = await this.authorize(req, "admin", existingId ? "client.update" : "client.register");
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
      },
      this.clientAudit(viewer, req.ip, f.reason),
      { update: existingId !== undefined },
    );
    return { id: client.id, secret };
  }

  async changeClient(req: FormRequest, id: string, op: "suspend" | "activate" | "rotate" | "delete"): Promise<{ secret?: string }> {
    const viewer = await this.authorize(req, "admin", `client.${op}`);
    const f = parseForm(z.object({ reason: reasonField, ...(op === "delete" ? { confirm: z.literal(id, `type the client id (${id}) to confirm`) } : {}) }), req.form);
    const audit = this.clientAudit(viewer, req.ip, f.reason);
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

  /* ---------- audit log ---------- */

  async auditLog(params: URLSearchParams, pageSize = 100) {
    const q = auditQuery.safeParse(Object.fromEntries(params));
    if (!q.success) throw invalidRequest(q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    const rows = await searchAuditEvents(this.cb.db, auditFilter(q.data), pageSize + 1);
    const page = rows.slice(0, pageSize);
    const last = page[page.length - 1];
    return {
      rows: page,
      nextCursor: rows.length > pageSize && last ? Buffer.from(JSON.stringify({ t: last.at.toISOString(), i: last.id })).toString("base64url") : null,
    };
  }

  /** The whole filtered log as CSV or JSON lines, streamed in keyset batches (constant memory). */
  async *exportAudit(params: URLSearchParams, format: "csv" | "jsonl"): AsyncGenerator<string> {
    const q = auditQuery.safeParse(Object.fromEntries(params));
    if (!q.success) throw invalidRequest(q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    const filter = auditFilter({ ...q.data, cursor: undefined });
    if (format === "csv") yield `${AUDIT_COLUMNS.join(",")}\r\n`;
    for (;;) {
      const rows = await searchAuditEvents(this.cb.db, filter, 1000);
      for (const r of rows) {
        const record = { ...r, at: r.at.toISOString(), details: r.details };
        if (format === "jsonl") yield `${JSON.stringify({ ...record, details: JSON.parse(r.details) as unknown })}\n`;
        else yield `${AUDIT_COLUMNS.map((c) => csvField(String(record[c] ?? ""))).join(",")}\r\n`;
      }
      const last = rows[rows.length - 1];
      if (rows.length < 1000 || !last) return;
      filter.before = { at: last.at, id: last.id };
    }
  }

  /** Audit the export itself: who took a copy of the log, with which filter. */
  async recordAuditExport(viewer: Viewer, params: URLSearchParams, format: string, ip: string | null) {
    const who = this.actorOf(viewer);
    await recordAudit(this.cb.db, { action: "audit.export", actor: who.actor, ip, details: { format, filter: Object.fromEntries(params), by: who.by } });
  }

  /* ---------- the person's own account ---------- */

  async account(viewer: Viewer) {
    const staticFqans = [...this.cb.vos.values()].flatMap((vo) => vo.config.members[viewer.identity.subject] ?? []);
    const memberships = membershipsFromClaims(viewer.claims, { staticFqans });
    const [consents, certificates, sshKeys] = await Promise.all([
      listGrantsOfAccount(this.cb.db, viewer.identity.id, this.cb.clock()),
      this.searchCertificates(new URLSearchParams({ limit: "20" }), viewer.identity.id),
      listSshKeys(this.cb.db, viewer.identity.id),
    ]);
    const clientNames = new Map((await listClients(this.cb.db)).map((c) => [c.id, c.name]));
    return {
      identity: viewer.identity,
      idp: typeof viewer.claims.idp_name === "string" ? viewer.claims.idp_name : viewer.identity.issuer,
      memberships: memberships.map((m) => ({ ...m, served: this.cb.vos.has(m.vo) })),
      consents: consents.map((c) => ({ ...c, clientName: clientNames.get(c.clientId) ?? c.clientId })),
      certificates,
      sshKeys,
      ssh: this.sshAccess(),
      proxyLifetimes: { default: this.cb.config.proxy.defaultLifetimeSeconds, max: this.cb.config.proxy.maxLifetimeSeconds },
    };
  }

  /** The SSH host key's fingerprint, read once it exists (the SSH server makes the key; pages only read it). */
  private sshFingerprint: string | null = null;

  /** How to reach the SSH service, for the account page's instructions (null when it is off). */
  sshAccess(): { host: string; port: number; user: string; command: string; fingerprint: string | null } | null {
    const ssh = this.cb.config.ssh;
    if (!ssh) return null;
    this.sshFingerprint ??= readHostKeyFingerprint(ssh.hostKeyFile, this.cb.config.kek);
    const fingerprint = this.sshFingerprint;
    const host = new URL(this.cb.config.publicUrl).hostname;
    return { host, port: ssh.port, user: SSH_USER, command: sshSaveCommand(host, ssh.port), fingerprint };
  }

  async addSshKey(req: FormRequest) {
    const viewer = await this.authorize(req, "person", "sshkey.add");
    return registerSshKey(this.cb.db, viewer.identity.id, { publicKey: req.form.get("public_key") ?? "", label: req.form.get("label") ?? undefined }, { actor: `user:${viewer.identity.id}`, ip: req.ip });
  }

  async deleteSshKey(req: FormRequest, id: string) {
    const viewer = await this.authorize(req, "person", "sshkey.delete");
    await removeSshKey(this.cb.db, viewer.identity.id, id, { actor: `user:${viewer.identity.id}`, ip: req.ip });
  }

  async revokeConsent(req: FormRequest, grantId: string) {
    const viewer = await this.authorize(req, "person", "consent.revoke");
    const clientId = await deleteGrantOfAccount(this.cb.db, viewer.identity.id, grantId, {
      action: "consent.revoke",
      actor: `user:${viewer.identity.id}`,
      ip: req.ip,
    });
    if (!clientId) throw notFound("no such consent (already revoked?)");
    return { clientId };
  }

  /** "Get a proxy now": a server-made key, for people without a gateway. */
  async proxyNow(req: FormRequest): Promise<{ filename: string; pem: string }> {
    const viewer = await this.authorize(req, "person", "proxy.issue");
    const f = parseForm(z.object({ lifetime: text(20).min(1, "choose a lifetime"), vo: text(200).optional(), acknowledge: z.literal("yes", "confirm that you will protect the file") }), req.form);
    const requests = f.vo ? parseVomsRequests([f.vo]) : [];
    const proxy = await this.cb.channels.consoleSession.issueProxy(
      { identity: viewer.identity, claims: viewer.claims, ip: req.ip },
      { lifetimeSeconds: lifetimeSeconds(f.lifetime, "lifetime"), voms: requests },
    ).catch((e: unknown) => {
      // A policy refusal (not a member of that VO) is the form's answer, shown on it; the authority has audited it.
      if (e instanceof CertbridgeError && e.code === "access_denied") throw invalidRequest(e.message, e);
      throw e;
    });
    return { filename: `x509up_certbridge_${proxy.serial}.pem`, pem: proxy.pem };
  }
}
