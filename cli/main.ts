/**
 * The operator CLI: `npm run cli -- <command>` or the `certbridge` bin.
 * An adapter like the HTTP routes: parse and validate arguments with zod,
 * call one lib/ function, print. Errors end the process with one line on
 * stderr and a non-zero status (2 for usage, 1 otherwise).
 */
import fs from "node:fs";
import os from "node:os";
import { parseArgs } from "node:util";
import { z } from "zod";
import { loadConfig } from "../lib/config";
import { CertbridgeError, asCertbridgeError, invalidRequest, operatorMessage } from "../lib/errors";
import { parseDuration, formatDuration } from "../lib/duration";
import { startCertbridge, openCa, type Certbridge } from "../lib/certbridge";
import { describeCa, initCaFiles, loadCaFiles } from "../lib/ca/authority";
import { parseKeyUri, tokenLocation } from "../lib/kms";
import { parseRevocationReason } from "../lib/ca/revocation";
import { parseVomsRequests } from "../lib/voms/proxyExtension";
import { writeFileAtomic } from "../lib/files";
import { findCertificate, listAuditEvents, getCaRecord, listMyProxyRenewers, removeMyProxyRenewer } from "../lib/db";
import { registerRenewer } from "../lib/myproxy/renewers";
import { searchCertificates } from "../lib/admin/certificates";
import { systemClock } from "../lib/clock";
import { registerClient, listClients, removeClient, rotateClientSecret, setClientCompatProfile, setClientStatus, type ClientInput } from "../lib/oidc/clients";
import { COMPAT_PROFILES, COMPAT_PROFILE_SUMMARY, compatProfileSchema } from "../lib/oidc/compatProfile";

const USAGE = `usage: certbridge <command> [options]

  ca init [--key URI]              create the CA (first start does this too); with --key pkcs11:…
                                   the key is generated in the token, or an existing certificate
                                   (CERTBRIDGE_CA_CERT_FILE) whose key is there is adopted
  ca info                          show the CA certificate and CRL status
  ca bundle --out DIR              export the trust directory (X509_CERT_DIR)
  ca crl --out FILE [--der]        export the current CRL (signed on revocation and on schedule)
  cert list [--kind user|proxy] [--status valid|expired|revoked] [--subject TEXT] [--limit N]
  cert show SERIAL|ID              decode a certificate and print its audit trail
  cert revoke SERIAL|ID --reason REASON --comment TEXT
  proxy issue --claims FILE.json [--csr FILE] [--lifetime 12h] [--voms vo[:fqan] ...] --out FILE
  client add --name NAME --redirect-uri URI [--redirect-uri URI ...] [--id ID] [--public]
             [--scope S ...] [--homepage URL] [--contact EMAIL] [--max-lifetime 24h] [--device-grant]
             [--profile masterportal]
                                   register a gateway; prints its secret once
                                   (--device-grant: RFC 8628 for it, e.g. oidc-agent; no redirect URI needed)
  client list                      gateways, without secrets
  client secret ID                 a new secret for a confidential gateway, printed once (the old one stops working)
  client profile ID masterportal|none [--comment TEXT]
                                   set a confidential gateway's compatibility profile (README)
  client suspend ID [--comment TEXT]
  client activate ID
  client remove ID                 remove a gateway with its grants and tokens
  renewer add --subject DN --ca DIR|FILE [--crl FILE|DIR] [--label TEXT]
                                   register a MyProxy renewer (VO box host certificate) and the CA
                                   certificates (and CRLs) that vouch for it; again to refresh them
  renewer list                     registered MyProxy renewers
  renewer remove DN|ID             remove a renewer, with the renewal consents people gave it

Configuration comes from CERTBRIDGE_* environment variables (see README).`;

class UsageError extends Error {}

const actor = () => `cli:${os.userInfo().username}`;

type Out = (line: string) => void;

function table(rows: Record<string, unknown>[], out: Out) {
  if (rows.length === 0) return out("(none)");
  const cols = Object.keys(rows[0]!);
  const cell = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v ?? ""));
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  out(cols.map((c, i) => c.padEnd(width[i]!)).join("  "));
  for (const r of rows) out(cols.map((c, i) => cell(r[c]).padEnd(width[i]!)).join("  ").trimEnd());
}

/** A certificate named by id (UUID) or serial (hex, optional colons, or decimal for proxies). */
function certRef(arg: string | undefined): { id: string } | { serialHex: string } {
  if (!arg) throw new UsageError("name a certificate by serial (hex) or id");
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(arg)) return { id: arg.toLowerCase() };
  const hex = arg.replace(/:/g, "").toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) throw new UsageError(`"${arg}" is neither a certificate id nor a hex serial`);
  return { serialHex: hex.replace(/^0+(?=.)/, "") };
}

const proxyIssueArgs = z.object({
  claims: z.string({ error: "--claims FILE.json is required" }),
  csr: z.string().optional(),
  lifetime: z.string().optional(),
  out: z.string({ error: "--out FILE is required" }),
});

const claimsFile = z.object({ iss: z.string(), sub: z.string() }).loose();

async function run(argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      out: { type: "string" },
      der: { type: "boolean" },
      kind: { type: "string" },
      status: { type: "string" },
      subject: { type: "string" },
      limit: { type: "string" },
      reason: { type: "string" },
      comment: { type: "string" },
      claims: { type: "string" },
      csr: { type: "string" },
      lifetime: { type: "string" },
      voms: { type: "string", multiple: true },
      name: { type: "string" },
      "redirect-uri": { type: "string", multiple: true },
      ca: { type: "string" },
      crl: { type: "string" },
      label: { type: "string" },
      id: { type: "string" },
      public: { type: "boolean" },
      "device-grant": { type: "boolean" },
      scope: { type: "string", multiple: true },
      homepage: { type: "string" },
      contact: { type: "string" },
      "max-lifetime": { type: "string" },
      profile: { type: "string" },
      key: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [group, command, arg] = positionals;
  if (values.help) {
    out(USAGE);
    return;
  }
  if (!group) throw new UsageError("no command given");
  const config = loadConfig();

  if (group === "ca" && command === "init") {
    const keyUri = typeof values.key === "string" ? values.key : config.ca.keyFile;
    if (parseKeyUri(keyUri).scheme === "pkcs11") {
      // The key ceremony: generate the key inside the token and self-sign, or adopt the certificate
      // already there whose key the token holds (loadCaFiles checks that they match).
      const withKey = { ...config, ca: { ...config.ca, keyFile: keyUri } };
      const files = { certFile: withKey.ca.certFile, keyFile: keyUri, keyPassphrase: "", pkcs11: config.pkcs11 };
      const adopt = fs.existsSync(files.certFile);
      const ca = adopt
        ? loadCaFiles(files)
        : await initCaFiles(files, { subject: config.ca.subject, keyBits: config.ca.keyBits, lifetimeSeconds: config.ca.lifetimeSeconds }, systemClock);
      const cb = await startCertbridge({ ...withKey, ca: { ...withKey.ca, external: true } }, { log: () => {} });
      await cb.close();
      out(`${adopt ? "adopted" : "created"} CA ${ca.subject}`);
      out(`certificate: ${files.certFile}`);
      out(`key: ${tokenLocation(ca.custody) ?? keyUri}`);
      out(`start with CERTBRIDGE_CA_CERT_FILE=${files.certFile} CERTBRIDGE_CA_KEY_FILE='${keyUri}'`);
      return;
    }
    const { ca, created } = await openCa(config, systemClock, true, () => {});
    if (!created) throw new CertbridgeError("conflict", `a CA already exists at ${config.ca.certFile}`);
    const cb = await startCertbridge(config); // registers the CA, creates the VOs' attribute authorities
    await cb.close();
    out(`created CA ${ca.subject}`);
    out(`certificate: ${config.ca.certFile}`);
    out(`key (encrypted PKCS#8): ${config.ca.keyFile}`);
    return;
  }

  const cb = await startCertbridge(config, { log: () => {} });
  try {
    await dispatch(cb, group, command, arg, values, out, positionals.slice(3));
  } finally {
    await cb.close();
  }
}

async function dispatch(
  cb: Certbridge,
  group: string,
  command: string | undefined,
  arg: string | undefined,
  values: Record<string, string | boolean | string[] | undefined>,
  out: Out,
  /** Positional words after the first argument (`client profile ID PROFILE`). */
  more: string[] = [],
) {
  const str = (k: string) => (typeof values[k] === "string" ? (values[k] as string) : undefined);
  const strs = (k: string) => (Array.isArray(values[k]) ? (values[k] as string[]) : []);
  const clientId = () => {
    if (!arg) throw new UsageError(`client ${command} needs a client ID`);
    return arg;
  };
  switch (`${group} ${command ?? ""}`) {
    case "ca info": {
      const info = describeCa(cb.ca);
      const rec = await getCaRecord(cb.db, cb.ca.fingerprint);
      const daysLeft = Math.floor((info.notAfter.getTime() - cb.clock().getTime()) / 86_400_000);
      out(`subject:      ${info.subject}`);
      out(`serial:       ${info.serial}`);
      out(`valid:        ${info.notBefore.toISOString()} .. ${info.notAfter.toISOString()} (${daysLeft} days left)`);
      out(`key:          RSA ${info.keyBits} bits`);
      out(`sha256:       ${info.fingerprintSha256}`);
      out(`skid:         ${info.subjectKeyIdentifier}`);
      out(`certificate:  ${cb.config.ca.certFile}`);
      out(`key store:    ${tokenLocation(cb.ca.custody) ?? `software key ${cb.config.ca.keyFile}`}`);
      out(`crl:          ${rec?.crlIssuedAt ? `#${rec.crlNumber} issued ${rec.crlIssuedAt.toISOString()}, next update ${rec.crlNextUpdate?.toISOString()}` : "never published"}`);
      return;
    }
    case "ca bundle": {
      const dir = str("out");
      if (!dir) throw new UsageError("ca bundle needs --out DIR");
      const b = await cb.authority.exportTrustDirectory(dir);
      out(`wrote ${b.files.length} files to ${b.directory} (hash ${b.hash}, old hash ${b.hashOld})`);
      return;
    }
    case "ca crl": {
      const file = str("out");
      if (!file) throw new UsageError("ca crl needs --out FILE");
      const crl = await cb.authority.currentCrl();
      writeFileAtomic(file, values.der ? crl.der : crl.pem, 0o644);
      out(`CRL #${crl.number}: ${crl.revokedCount} revoked, next update ${crl.nextUpdate.toISOString()} -> ${file}`);
      return;
    }
    case "cert list": {
      const f = z
        .object({
          kind: z.enum(["user", "proxy"]).optional(),
          status: z.enum(["valid", "expired", "revoked"]).optional(),
          subject: z.string().min(1).optional(),
          limit: z.coerce.number().int().min(1).max(10_000).default(50),
        })
        .safeParse({ kind: str("kind"), status: str("status"), subject: str("subject"), limit: str("limit") });
      if (!f.success) throw new UsageError(f.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`).join("; "));
      const now = cb.clock();
      // The operators' search (lib/admin), page by page up to --limit.
      const rows = [];
      let cursor: string | undefined;
      do {
        const page = await searchCertificates(cb.db, { kind: f.data.kind, status: f.data.status, subject: f.data.subject, limit: Math.min(200, f.data.limit - rows.length), cursor }, now);
        rows.push(...page.rows);
        cursor = page.nextCursor ?? undefined;
      } while (cursor && rows.length < f.data.limit);
      table(
        rows.map((r) => ({
          serial: r.serialHex,
          kind: r.kind,
          status: r.state,
          notAfter: r.notAfter,
          keySource: r.keySource,
          subject: r.subject,
        })),
        out,
      );
      return;
    }
    case "cert show": {
      const cert = await findCertificate(cb.db, certRef(arg));
      if (!cert) throw new CertbridgeError("not_found", `no certificate ${arg}`);
      const { pem, ...fields } = cert;
      for (const [k, v] of Object.entries(fields)) out(`${k.padEnd(18)} ${v instanceof Date ? v.toISOString() : String(v ?? "")}`);
      out("audit:");
      for (const e of await listAuditEvents(cb.db, { certificateId: cert.id, limit: 100 })) {
        out(`  ${e.at.toISOString()}  ${e.action}  ${e.outcome}  ${e.actor}${e.ip ? ` from ${e.ip}` : ""}  ${e.details}`);
      }
      out(pem.trimEnd());
      return;
    }
    case "cert revoke": {
      const reason = parseRevocationReason(str("reason") ?? "");
      const comment = str("comment")?.trim();
      if (!comment) throw new UsageError("cert revoke needs --comment TEXT (why, for the audit trail)");
      const r = await cb.authority.revoke(certRef(arg), reason, { actor: actor(), comment });
      out(`revoked ${r.serialHex} (${r.subject}), reason ${reason}; CRL #${r.crl.number} lists it (export it with: certbridge ca crl --out FILE)`);
      return;
    }
    case "proxy issue": {
      const a = proxyIssueArgs.safeParse({ claims: str("claims"), csr: str("csr"), lifetime: str("lifetime"), out: str("out") });
      if (!a.success) throw new UsageError(a.error.issues.map((i) => i.message).join("; "));
      let claimsJson: unknown;
      try {
        claimsJson = JSON.parse(fs.readFileSync(a.data.claims, "utf8"));
      } catch (e) {
        throw invalidRequest(`cannot read claims from ${a.data.claims}: ${(e as Error).message}`);
      }
      const claims = claimsFile.safeParse(claimsJson);
      if (!claims.success) throw invalidRequest(`${a.data.claims}: claims need string "iss" and "sub"`);
      let lifetimeSeconds: number | undefined;
      try {
        lifetimeSeconds = a.data.lifetime === undefined ? undefined : parseDuration(a.data.lifetime);
      } catch (e) {
        throw new UsageError(`--lifetime: ${(e as Error).message}`);
      }
      const publicKey = a.data.csr === undefined ? undefined : fs.readFileSync(a.data.csr, "utf8");
      const voms = parseVomsRequests(strs("voms"));
      const proxy = await cb.channels.operatorClaims.issueProxy({ claims: claims.data, actor: actor() }, { publicKey, lifetimeSeconds, voms });
      const extension = proxy.extension;
      writeFileAtomic(a.data.out, proxy.pem, 0o600);
      out(`issued proxy ${proxy.serial} for ${proxy.subject}${extension ? ` with VOMS attributes ${extension.describe().fqans?.join(" ")}` : ""}`);
      out(`valid until ${proxy.notAfter.toISOString()} (${formatDuration(proxy.lifetime.seconds)}${proxy.lifetime.clamped ? `, clamped by the ${proxy.lifetime.cappedBy} maximum` : ""}); key: ${proxy.keySource} -> ${a.data.out}`);
      return;
    }
    case "client add": {
      const name = str("name");
      if (name === undefined) throw new UsageError("client add needs --name NAME");
      const redirectUris = strs("redirect-uri");
      const deviceGrant = values["device-grant"] === true;
      if (redirectUris.length === 0 && !deviceGrant) throw new UsageError("client add needs at least one --redirect-uri URI (or --device-grant)");
      // --scope may repeat, and each may hold several scopes separated by spaces or commas.
      const scopes = strs("scope").flatMap((s) => s.split(/[\s,]+/)).filter(Boolean);
      let maxProxyLifetimeSeconds: number | undefined;
      const maxLifetime = str("max-lifetime");
      try {
        maxProxyLifetimeSeconds = maxLifetime === undefined ? undefined : parseDuration(maxLifetime);
      } catch (e) {
        throw new UsageError(`--max-lifetime: ${(e as Error).message}`);
      }
      const profile = str("profile");
      if (profile !== undefined && !compatProfileSchema.safeParse(profile).success) throw new UsageError(`--profile: one of ${COMPAT_PROFILES.join(", ")}`);
      const { client, secret } = await registerClient(
        cb.db,
        cb.config.kek,
        {
          id: str("id"),
          ...(profile ? { compatProfile: profile as ClientInput["compatProfile"] } : {}),
          name,
          homepage: str("homepage"),
          contact: str("contact"),
          public: values.public === true,
          redirectUris,
          ...(scopes.length ? { scopes: scopes as ClientInput["scopes"] } : {}),
          maxProxyLifetimeSeconds,
          ...(deviceGrant ? { tokenPolicy: { deviceGrant: true } } : {}),
        },
        { actor: actor() },
      );
      out(`registered ${client.isPublic ? "public" : "confidential"} client ${client.id} (${client.name})`);
      out(`client id:     ${client.id}`);
      if (client.compatProfile) out(`profile:       ${client.compatProfile} (${COMPAT_PROFILE_SUMMARY[client.compatProfile as keyof typeof COMPAT_PROFILE_SUMMARY]})`);
      if (secret) {
        out(`client secret: ${secret}`);
        out("The secret is shown only this once: give it to the gateway now. It cannot be displayed again.");
      }
      return;
    }
    case "client list": {
      table(
        (await listClients(cb.db)).map((c) => ({
          id: c.id,
          name: c.name,
          type: c.isPublic ? "public" : "confidential",
          status: c.status,
          maxLifetime: formatDuration(c.maxProxyLifetime),
          redirectUris: (JSON.parse(c.redirectUris) as string[]).join(","),
          scopes: c.scopes.split(" ").join(","),
          profile: c.compatProfile ?? "-",
        })),
        out,
      );
      return;
    }
    case "client secret": {
      const id = clientId();
      const secret = await rotateClientSecret(cb.db, cb.config.kek, id, { actor: actor() });
      out(`client id:     ${id}`);
      out(`client secret: ${secret}`);
      out("The secret is shown only this once: give it to the gateway now. The previous secret no longer works.");
      return;
    }
    case "client remove": {
      const id = clientId();
      await removeClient(cb.db, id, { actor: actor() });
      out(`removed client ${id}, with its grants and tokens`);
      return;
    }
    case "client profile": {
      const id = clientId();
      const wanted = more[0];
      if (wanted === undefined) throw new UsageError(`client profile needs ID and one of ${[...COMPAT_PROFILES, "none"].join(", ")}`);
      const profile = wanted === "none" ? null : compatProfileSchema.safeParse(wanted).data;
      if (profile === undefined) throw new UsageError(`unknown profile "${wanted}": one of ${[...COMPAT_PROFILES, "none"].join(", ")}`);
      await setClientCompatProfile(cb.db, id, profile, { actor: actor(), reason: str("comment")?.trim() || undefined });
      out(profile ? `client ${id} now has the ${profile} profile: ${COMPAT_PROFILE_SUMMARY[profile]}` : `client ${id} has no compatibility profile: PKCE and strict parsing apply`);
      return;
    }
    case "client suspend":
    case "client activate": {
      const id = clientId();
      const status = command === "suspend" ? "suspended" : "active";
      await setClientStatus(cb.db, id, status, { actor: actor(), reason: str("comment")?.trim() || undefined });
      out(command === "suspend" ? `suspended client ${id}: its tokens are refused until it is activated` : `activated client ${id}`);
      return;
    }
    case "renewer add": {
      const subject = str("subject");
      const ca = str("ca");
      if (!subject || !ca) throw new UsageError("renewer add needs --subject DN and --ca DIR|FILE");
      const r = await registerRenewer(cb.db, { subject, caPath: ca, crlPath: str("crl"), label: str("label") }, { actor: actor() });
      out(`${r.created ? "registered" : "updated"} renewer ${r.subject} (${r.id})`);
      for (const c of r.caCertificates) out(`  vouched for by: ${c}`);
      for (const c of r.crls) out(`  CRL of ${c.issuer}${c.nextUpdate ? `, next update ${c.nextUpdate.toISOString()}` : ""}`);
      return;
    }
    case "renewer list": {
      table((await listMyProxyRenewers(cb.db)).map((r) => ({ id: r.id, subject: r.subject, label: r.label, updated: r.updatedAt })), out);
      return;
    }
    case "renewer remove": {
      if (!arg) throw new UsageError("name the renewer by subject DN or id");
      if (!(await removeMyProxyRenewer(cb.db, arg, { action: "myproxy.renewer.remove", actor: actor() }))) throw new CertbridgeError("not_found", `no renewer ${arg}`);
      out(`removed renewer ${arg}, with the renewal consents people gave it`);
      return;
    }
    default:
      throw new UsageError(`unknown command "${[group, command].filter(Boolean).join(" ")}"`);
  }
}

export async function main(argv: string[]): Promise<number> {
  try {
    await run(argv, (l) => process.stdout.write(`${l}\n`));
    return 0;
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`certbridge: ${(e as Error).message}\n${USAGE.split("\n")[0]} (certbridge --help)\n`);
      return 2;
    }
    const err = asCertbridgeError(e);
    process.stderr.write(`certbridge: ${err.code === "server_error" ? `internal error: ${(e as Error).message}` : operatorMessage(e)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
