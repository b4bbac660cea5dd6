/** The person's own account page: identity and VOs, certificates, consents, SSH keys, "get a proxy now". */
import { z } from "zod";
import type { Certbridge } from "../certbridge";
import { CertbridgeError, invalidRequest, notFound } from "../errors";
import { addMyProxyCode, addRenewalConsent, listLiveMyProxyCodes, listLiveRenewalConsents, listMyProxyRenewers, listSshKeys, revokeRenewalConsent } from "../db";
import { myproxyCodeHash, newMyProxyCode } from "../authority/provisioners/myproxyToken";
import { deleteGrantOfAccount, listGrantsOfAccount } from "../oidc/grants";
import { listClients } from "../oidc/clients";
import { isRoleFqan, membershipsFromClaims, selectFqans, toLongFqan } from "../voms/membership";
import { parseVomsRequests } from "../voms/proxyExtension";
import { registerSshKey, removeSshKey } from "../ssh/registry";
import { readHostKeyFingerprint, SSH_USER, sshSaveCommand } from "../ssh/server";
import type { ConsoleGate, Viewer } from "./gate";
import type { CertificateViews } from "./certificates";
import { DAY, lifetimeSeconds, parseForm, text, type FormRequest } from "./forms";
import { displayText } from "../displayText";

/** How long a one-time MyProxy retrieval code stays usable. */
export const MYPROXY_CODE_MINUTES = 10;
/** The furthest end a person may give a renewal consent (a host certificate's usual life). */
export const MAX_RENEWAL_CONSENT_DAYS = 395;

export class AccountConsole {
  constructor(
    private readonly cb: Certbridge,
    private readonly gate: ConsoleGate,
    private readonly certificates: CertificateViews,
  ) {}

  async account(viewer: Viewer) {
    const staticFqans = [...this.cb.vos.values()].flatMap((vo) => vo.config.members[viewer.identity.subject] ?? []);
    const memberships = membershipsFromClaims(viewer.claims, { staticFqans });
    const myproxyOn = this.cb.config.myproxy !== null;
    const [consents, certificates, sshKeys, myproxyCodes, renewers, renewalConsents] = await Promise.all([
      listGrantsOfAccount(this.cb.db, viewer.identity.id, this.cb.clock()),
      this.certificates.searchCertificates(new URLSearchParams({ limit: "20" }), viewer.identity.id),
      listSshKeys(this.cb.db, viewer.identity.id),
      myproxyOn ? listLiveMyProxyCodes(this.cb.db, viewer.identity.id, this.cb.clock()) : Promise.resolve([]),
      myproxyOn ? listMyProxyRenewers(this.cb.db) : Promise.resolve([]),
      myproxyOn ? listLiveRenewalConsents(this.cb.db, viewer.identity.id, this.cb.clock()) : Promise.resolve([]),
    ]);
    const clientNames = new Map((await listClients(this.cb.db)).map((c) => [c.id, displayText(c.name)]));
    return {
      identity: viewer.identity,
      idp: typeof viewer.claims.idp_name === "string" ? viewer.claims.idp_name : viewer.identity.issuer,
      memberships: memberships.map((m) => ({ ...m, served: this.cb.vos.has(m.vo) })),
      consents: consents.map((c) => ({ ...c, clientName: clientNames.get(c.clientId) ?? c.clientId })),
      certificates,
      sshKeys,
      ssh: this.sshAccess(),
      myproxy: this.myproxyAccess(),
      myproxyCodes,
      renewers,
      renewalConsents,
      maxRenewalConsentDays: MAX_RENEWAL_CONSENT_DAYS,
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

  /** How to reach the MyProxy listener (null when it is off). */
  myproxyAccess(): { host: string; port: number; codeMinutes: number } | null {
    const m = this.cb.config.myproxy;
    return m ? { host: m.hostName, port: m.port, codeMinutes: MYPROXY_CODE_MINUTES } : null;
  }

  /** A one-time retrieval code for myproxy-logon: shown once (the response to this POST), stored as a hash. */
  async createMyProxyCode(req: FormRequest): Promise<{ code: string; expiresAt: Date; username: string; command: string }> {
    const viewer = await this.gate.require(req, "person", "myproxy.code.create");
    const access = this.myproxyAccess();
    if (!access) throw invalidRequest("the MyProxy listener is not enabled on this portal");
    const code = newMyProxyCode();
    const expiresAt = new Date(this.cb.clock().getTime() + MYPROXY_CODE_MINUTES * 60_000);
    await addMyProxyCode(this.cb.db, { identityId: viewer.identity.id, codeHash: myproxyCodeHash(code), expiresAt }, { action: "myproxy.code.create", actor: `user:${viewer.identity.id}`, ip: req.ip });
    const command = `myproxy-logon -s ${access.host} -p ${access.port} -l "${viewer.identity.subject}" -S -o /tmp/x509up_u$(id -u)`;
    return { code, expiresAt, username: viewer.identity.subject, command };
  }

  /**
   * Consent to MyProxy renewal by a registered renewer (a VO box), for one VO (groups only, or
   * with one role the person holds), until the end (UTC) of a day they choose. The VO box can then
   * keep their proxy alive with `myproxy-logon -a`; the consent is what is stored, not a credential.
   */
  async addRenewalConsent(req: FormRequest): Promise<{ id: string; renewer: string; what: string; expiresAt: Date }> {
    const viewer = await this.gate.require(req, "person", "myproxy.renewal.consent");
    if (!this.cb.config.myproxy) throw invalidRequest("the MyProxy listener is not enabled on this portal");
    const f = parseForm(
      z.object({
        renewer: text(100).min(1, "choose a renewer"),
        vo: text(300).min(1, "choose a VO"),
        until: text(10).regex(/^\d{4}-\d{2}-\d{2}$/, "give the end date as YYYY-MM-DD"),
      }),
      req.form,
    );
    const now = this.cb.clock();
    const renewer = (await listMyProxyRenewers(this.cb.db)).find((r) => r.id === f.renewer);
    if (!renewer) throw invalidRequest("renewer: no such registered renewer");
    const [request] = parseVomsRequests([f.vo]);
    if (!request || !this.cb.vos.has(request.vo)) throw invalidRequest(`vo: ${request?.vo ?? f.vo} is not a VO this portal serves`);
    const role = request.fqan && isRoleFqan(request.fqan) ? toLongFqan(request.fqan) : null;
    // Only what the person holds now (the renewal itself checks again, against their claims then).
    const staticFqans = [...this.cb.vos.values()].flatMap((vo) => vo.config.members[viewer.identity.subject] ?? []);
    const membership = membershipsFromClaims(viewer.claims, { staticFqans }).find((m) => m.vo === request.vo);
    const held = selectFqans(membership, request.vo, role);
    if (!held.ok) throw invalidRequest(`vo: ${held.reason}`);
    const expiresAt = new Date(`${f.until}T23:59:59Z`);
    if (Number.isNaN(expiresAt.getTime())) throw invalidRequest("until: not a date");
    if (expiresAt.getTime() <= now.getTime() + 3600_000) throw invalidRequest("until: the consent must end at least an hour from now");
    if (expiresAt.getTime() > now.getTime() + MAX_RENEWAL_CONSENT_DAYS * DAY) throw invalidRequest(`until: at most ${MAX_RENEWAL_CONSENT_DAYS} days from now`);
    const id = await addRenewalConsent(
      this.cb.db,
      { identityId: viewer.identity.id, renewerId: renewer.id, vo: request.vo, role, expiresAt },
      { action: "myproxy.renewal.consent", actor: `user:${viewer.identity.id}`, ip: req.ip, details: { renewer: renewer.subject } },
    );
    return { id, renewer: renewer.label, what: role ?? request.vo, expiresAt };
  }

  /** Withdraw a renewal consent: the next renewal by that VO box is refused. */
  async revokeRenewalConsent(req: FormRequest, consentId: string): Promise<void> {
    const viewer = await this.gate.require(req, "person", "myproxy.renewal.revoke");
    const ok = await revokeRenewalConsent(this.cb.db, viewer.identity.id, consentId, this.cb.clock(), { action: "myproxy.renewal.revoke", actor: `user:${viewer.identity.id}`, ip: req.ip });
    if (!ok) throw notFound("no such renewal consent (already revoked or ended?)");
  }

  async addSshKey(req: FormRequest) {
    const viewer = await this.gate.require(req, "person", "sshkey.add");
    return registerSshKey(this.cb.db, viewer.identity.id, { publicKey: req.form.get("public_key") ?? "", label: req.form.get("label") ?? undefined }, { actor: `user:${viewer.identity.id}`, ip: req.ip });
  }

  async deleteSshKey(req: FormRequest, id: string) {
    const viewer = await this.gate.require(req, "person", "sshkey.delete");
    await removeSshKey(this.cb.db, viewer.identity.id, id, { actor: `user:${viewer.identity.id}`, ip: req.ip });
  }

  /** One of the person's consents, for the page that confirms its revocation. */
  async consent(viewer: Viewer, grantId: string) {
    const grant = (await listGrantsOfAccount(this.cb.db, viewer.identity.id, this.cb.clock())).find((g) => g.grantId === grantId);
    if (!grant) throw notFound("no such consent (already revoked?)");
    const client = (await listClients(this.cb.db)).find((c) => c.id === grant.clientId);
    return { ...grant, clientName: client ? displayText(client.name) : grant.clientId };
  }

  /**
   * Withdraw a consent, once the person has confirmed (confirm=yes): the grant and every token
   * under it. Says what went: the client, and how many tokens of each kind were still live.
   */
  async revokeConsent(req: FormRequest, grantId: string): Promise<{ clientId: string; clientName: string; summary: string }> {
    const viewer = await this.gate.require(req, "person", "consent.revoke");
    if (req.form.get("confirm") !== "yes") throw invalidRequest("confirm the revocation on its page first");
    const r = await deleteGrantOfAccount(this.cb.db, viewer.identity.id, grantId, {
      action: "consent.revoke",
      actor: `user:${viewer.identity.id}`,
      ip: req.ip,
    });
    if (!r) throw notFound("no such consent (already revoked?)");
    const clientId = r.clientId ?? "?";
    const clientName = displayText((await listClients(this.cb.db)).find((c) => c.id === clientId)?.name ?? clientId);
    const n = (model: string) => r.tokens[model] ?? 0;
    const parts = [
      n("RefreshToken") ? `${n("RefreshToken")} refresh token${n("RefreshToken") === 1 ? "" : "s"}` : "",
      n("AccessToken") ? `${n("AccessToken")} access token${n("AccessToken") === 1 ? "" : "s"}` : "",
    ].filter(Boolean);
    const summary = `Consent for ${clientName} (${clientId}) revoked${parts.length ? `, with ${parts.join(" and ")}` : ", no token was still valid"}: it can no longer obtain proxies in your name.`;
    return { clientId, clientName, summary };
  }

  /** "Get a proxy now": a server-made key, for people without a gateway. */
  async proxyNow(req: FormRequest): Promise<{ filename: string; pem: string }> {
    const viewer = await this.gate.require(req, "person", "proxy.issue");
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
