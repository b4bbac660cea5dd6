/**
 * Server components shared by the account and admin consoles: the session
 * gate, navigation, CSRF field, badges, times, pagination and the
 * certificate detail view. Everything renders on the server; forms post to
 * route handlers, so the consoles work without JavaScript.
 */
import type { ReactNode } from "react";
import { cookies, headers } from "next/headers";
import { forbidden, notFound, redirect } from "next/navigation";
import { describeError } from "../../lib/http";
import { portal } from "../../lib/runtime";
import type { CertificateViews, Viewer } from "../../lib/console";

/** The console gate for a page: a redirect to sign in and come back to `path`, or a 403 page (not a redirect loop). */
async function gatePage(path: string, role: "person" | "admin"): Promise<Viewer> {
  const ip = (await headers()).get("x-certbridge-client-ip") || null;
  try {
    return await portal().console.gate.require({ cookie: (await cookies()).toString(), ip }, role, `view ${path}`);
  } catch (e) {
    const { status } = describeError(e);
    if (status === 401) redirect(`/login?next=${encodeURIComponent(path)}`);
    if (status === 403) forbidden();
    throw e;
  }
}

/** The signed-in person, or a redirect to sign in and come back to `path`. */
export const requireViewer = (path: string): Promise<Viewer> => gatePage(path, "person");

/** Administrators only; a refusal is audited by the gate. */
export const requireAdmin = (path: string): Promise<Viewer> => gatePage(path, "admin");

/** A lib call whose not_found becomes Next's 404 page. */
export async function orNotFound<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if ((e as { code?: string }).code === "not_found") notFound();
    throw e;
  }
}

/** A lib call whose user error (bad filter, stale cursor) is shown on the page instead of failing it. */
export async function orUserError<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; message: string }> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    const s = describeError(e);
    if (s.status >= 500) throw e;
    return { ok: false, message: s.message };
  }
}

export type SearchParams = Promise<Record<string, string | string[] | undefined>>;

/** Query parameters as URLSearchParams (first value of repeats). */
export async function paramsOf(searchParams: SearchParams): Promise<URLSearchParams> {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(await searchParams)) {
    const value = Array.isArray(v) ? v[0] : v;
    if (value !== undefined) p.set(k, value);
  }
  return p;
}

const ADMIN_LINKS = [
  ["/admin", "Overview"],
  ["/admin/certificates", "Certificates"],
  ["/admin/clients", "Gateways"],
  ["/admin/audit", "Audit log"],
] as const;

export function ConsoleNav({ viewer, current }: { viewer: Viewer; current: string }) {
  return (
    <nav className="console" aria-label="Console">
      {viewer.admin
        ? ADMIN_LINKS.map(([href, label]) => (
            <a key={href} href={href} aria-current={current === href ? "page" : undefined}>
              {label}
            </a>
          ))
        : null}
      <a href="/account" aria-current={current === "/account" ? "page" : undefined}>
        My account
      </a>
      <span className="who">
        {viewer.identity.displayName}
        {viewer.admin ? " (administrator)" : ""}
      </span>
      <form method="post" action="/logout">
        <Csrf viewer={viewer} />
        <button type="submit">Sign out</button>
      </form>
    </nav>
  );
}

export function Console({ viewer, current, children }: { viewer: Viewer; current: string; children: ReactNode }) {
  return (
    <div className="console">
      <ConsoleNav viewer={viewer} current={current} />
      {children}
    </div>
  );
}

export const Csrf = ({ viewer }: { viewer: Viewer }) => <input type="hidden" name="csrf" value={viewer.csrf} />;

/** A one-button form for a destructive action on one row. */
export function PostButton({ viewer, action, label, ariaLabel }: { viewer: Viewer; action: string; label: string; ariaLabel: string }) {
  return (
    <form method="post" action={action}>
      <Csrf viewer={viewer} />
      <button type="submit" className="danger" aria-label={ariaLabel}>
        {label}
      </button>
    </form>
  );
}

export function Flash({ params }: { params: URLSearchParams }) {
  const error = params.get("error");
  const done = params.get("done");
  return (
    <>
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : null}
      {done ? (
        <p className="notice" role="status">
          {done}
        </p>
      ) : null}
    </>
  );
}

export const Badge = ({ value }: { value: string }) => <span className={`badge ${value}`}>{value}</span>;

/** UTC, to the second: operators correlate with logs. */
export function Time({ at }: { at: Date | null | undefined }) {
  if (!at) return <>—</>;
  const iso = at.toISOString();
  return <time dateTime={iso}>{iso.replace("T", " ").replace(/\.\d{3}Z$/, "Z")}</time>;
}

/** Links to the next page and back to the first, keeping the filters. */
export function Pager({ base, params, nextCursor }: { base: string; params: URLSearchParams; nextCursor: string | null }) {
  const first = new URLSearchParams(params);
  first.delete("cursor");
  first.delete("error");
  first.delete("done");
  const next = new URLSearchParams(first);
  if (nextCursor) next.set("cursor", nextCursor);
  return (
    <p className="pager">
      {params.get("cursor") ? <a href={`${base}?${first.toString()}`}>« First page</a> : null}
      {nextCursor ? <a href={`${base}?${next.toString()}`}>Next page »</a> : null}
    </p>
  );
}

type CertificateRow = Awaited<ReturnType<CertificateViews["searchCertificates"]>>["rows"][number];

/** The certificate list: every column for administrators; a person's own view omits subject and key. */
export function CertificateTable({ rows, admin }: { rows: CertificateRow[]; admin: boolean }) {
  const base = admin ? "/admin/certificates" : "/account/certificates";
  return (
    <div className="table-wrap">
      <table className="data responsive">
        <thead>
          <tr>
            {admin ? <th scope="col">Subject</th> : null}
            <th scope="col">Serial{admin ? " (hex / dec)" : ""}</th><th scope="col">Kind</th><th scope="col">Gateway</th><th scope="col">VO{admin ? " / FQANs" : ""}</th>
            {admin ? <th scope="col">Key</th> : null}
            <th scope="col">Issued</th><th scope="col">Expires</th><th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((c) => (
            <tr key={c.id}>
              {admin ? <td data-label="Subject" className="dn"><a href={`${base}/${c.id}`}>{c.subject}</a></td> : null}
              <td data-label="Serial">
                {admin ? <code>{c.serialHex}</code> : <a href={`${base}/${c.id}`}><code>{c.serialHex}</code></a>}
                {admin ? <div className="hint">{c.serialDec}</div> : null}
              </td>
              <td data-label="Kind">{c.kind === "user" ? "user certificate" : "proxy"}</td>
              <td data-label="Gateway">{c.clientId ?? "—"}</td>
              <td data-label="VO">{c.vo ?? "—"}{admin && c.fqans ? <div className="hint">{(JSON.parse(c.fqans) as string[]).join(" ")}</div> : null}</td>
              {admin ? <td data-label="Key">{c.keySource}</td> : null}
              <td data-label="Issued"><Time at={c.createdAt} /></td>
              <td data-label="Expires"><Time at={c.notAfter} /></td>
              <td data-label="Status"><Badge value={c.state} /></td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

type CertificateDetail = Awaited<ReturnType<CertificateViews["certificate"]>>;

/** The decoded certificate, its origin and audit trail (admin and account views). */
export function CertificateView({ detail, pemHref, admin }: { detail: CertificateDetail; pemHref: string; admin: boolean }) {
  const { row, decoded } = detail;
  return (
    <>
      <h1>
        {row.kind === "user" ? "User certificate" : "Proxy certificate"} {row.serialHex} <Badge value={row.state} />
      </h1>
      <p className="actions">
        <a href={pemHref} download>
          Download PEM
        </a>
        {admin && row.kind === "user" && row.state === "valid" ? <a href={`/admin/certificates/${row.id}/revoke`}>Revoke this certificate…</a> : null}
      </p>
      <div className="table-wrap">
        <table className="data kv">
          <tbody>
            <tr><th scope="row">Subject</th><td className="dn">{decoded.subject}</td></tr>
            <tr><th scope="row">Issuer</th><td className="dn">{decoded.issuer}</td></tr>
            <tr><th scope="row">Serial</th><td><code>{row.serialHex}</code> (hex), <code>{row.serialDec}</code> (decimal)</td></tr>
            <tr><th scope="row">Valid</th><td><Time at={decoded.notBefore} /> to <Time at={decoded.notAfter} /></td></tr>
            <tr><th scope="row">Key</th><td>{decoded.publicKey.algorithm} {decoded.publicKey.bits ?? ""} bits, {row.keySource === "server" ? "made by the portal" : row.keySource === "ca" ? "made and kept (encrypted) by the portal's CA" : "the requester's own (CSR)"}</td></tr>
            <tr><th scope="row">Signature</th><td>{decoded.signatureAlgorithm}</td></tr>
            <tr><th scope="row">Gateway</th><td>{detail.client ? `${detail.client.name} (${detail.client.id})` : row.clientId ?? "—"}</td></tr>
            <tr><th scope="row">Requested by</th><td>{detail.requestedBy ? <>{detail.requestedBy.actor} from {detail.requestedBy.ip ?? "an unknown address"} at <Time at={detail.requestedBy.at} /></> : "—"}</td></tr>
            {admin && detail.owner ? (
              <tr><th scope="row">Person</th><td>{detail.owner.displayName} (<a href={`/admin/certificates?identity=${detail.owner.id}`}>all certificates</a>, <a href={`/admin/audit?identity=${detail.owner.id}`}>audit</a>)</td></tr>
            ) : null}
            {row.status === "revoked" ? <tr><th scope="row">Revoked</th><td><Time at={row.revokedAt} /> (reason code {row.revocationReason})</td></tr> : null}
          </tbody>
        </table>
      </div>
      {decoded.attributeCertificates.length ? (
        <>
          <h2>VOMS attributes</h2>
          {decoded.attributeCertificates.map((ac) => (
            <div key={ac.serialHex} className="table-wrap">
              <table className="data kv">
                <tbody>
                  <tr><th scope="row">VO</th><td>{ac.vo} <span className="hint">({ac.policyAuthority})</span></td></tr>
                  <tr><th scope="row">Attributes</th><td>{ac.fqans.map((f) => <div key={f}><code>{f}</code></div>)}</td></tr>
                  <tr><th scope="row">Issuer (AA)</th><td className="dn">{ac.issuer}</td></tr>
                  <tr><th scope="row">Valid</th><td><Time at={ac.notBefore} /> to <Time at={ac.notAfter} /></td></tr>
                </tbody>
              </table>
            </div>
          ))}
        </>
      ) : null}
      <h2>Extensions</h2>
      <div className="table-wrap">
        <table className="data">
          <thead><tr><th scope="col">Extension</th><th scope="col">Critical</th><th scope="col">Value</th></tr></thead>
          <tbody>
            {decoded.extensions.map((e) => (
              <tr key={e.oid}>
                <td>{e.name}<div className="hint">{e.oid}</div></td>
                <td>{e.critical ? "yes" : "no"}</td>
                <td>{e.values.map((v, i) => <div key={i}>{v}</div>)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Audit trail</h2>
      <AuditTable rows={detail.audit} />
    </>
  );
}

type AuditRow = { id: string; at: Date; action: string; actor: string; outcome: string; clientId: string | null; ip: string | null; details: string; identityId: string | null; certificateId: string | null };

export function AuditTable({ rows, links = false }: { rows: AuditRow[]; links?: boolean }) {
  if (!rows.length) return <p className="muted">No events.</p>;
  return (
    <div className="table-wrap">
      <table className="data responsive">
        <thead>
          <tr><th scope="col">When (UTC)</th><th scope="col">Action</th><th scope="col">Outcome</th><th scope="col">Actor</th><th scope="col">Gateway</th><th scope="col">IP</th><th scope="col">Details</th></tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id}>
              <td data-label="When"><Time at={r.at} /></td>
              <td data-label="Action">{r.action}</td>
              <td data-label="Outcome"><Badge value={r.outcome} /></td>
              <td data-label="Actor"><code>{r.actor}</code></td>
              <td data-label="Gateway">{r.clientId ?? "—"}</td>
              <td data-label="IP">{r.ip ?? "—"}</td>
              <td data-label="Details">
                <code>{r.details === "{}" ? "" : r.details}</code>
                {links && r.certificateId ? <div><a href={`/admin/certificates/${r.certificateId}`}>certificate</a></div> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
