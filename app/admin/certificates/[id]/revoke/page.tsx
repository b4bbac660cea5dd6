import { portal } from "../../../../../lib/runtime";
import { Console, Csrf, Flash, Time, orNotFound, paramsOf, requireAdmin, type SearchParams } from "../../../../_console/ui";

export const metadata = { title: "Revoke certificate · Admin · Certbridge" };

/** The confirmation step: what revoking means, then reason, comment and an explicit tick. */
export default async function RevokeCertificate({ params, searchParams }: { params: Promise<{ id: string }>; searchParams: SearchParams }) {
  const { id } = await params;
  const viewer = await requireAdmin(`/admin/certificates/${id}/revoke`);
  const c = portal().console.certificates;
  const { row } = await orNotFound(c.certificate(id));
  return (
    <Console viewer={viewer} current="/admin/certificates">
      <h1>Revoke user certificate {row.serialHex}?</h1>
      <Flash params={await paramsOf(searchParams)} />
      <p className="dn">{row.subject}</p>
      <p className="warning">
        Revoking puts serial <code>{row.serialHex}</code> on the CRL at once (valid until <Time at={row.notAfter} />). Relying
        parties that check the CRL will refuse this certificate and every proxy signed by it. The portal stops issuing proxies
        from it; the person&apos;s next request gets a new certificate with a new key. This cannot be undone.
      </p>
      {row.kind !== "user" || row.state !== "valid" ? (
        <p className="error" role="alert">Only valid user certificates can be revoked; this one is a {row.kind} certificate and {row.state}.</p>
      ) : (
        <form method="post" action={`/admin/certificates/${id}/revocation`} className="stack">
          <Csrf viewer={viewer} />
          <label>
            Reason (RFC 5280 CRLReason)
            <select name="reason" defaultValue="unspecified" required>
              {c.revocationReasons.map((r) => <option key={r} value={r}>{r}</option>)}
            </select>
          </label>
          <label>
            Comment <span className="hint">(required; recorded in the audit log)</span>
            <textarea name="comment" rows={3} required minLength={3} maxLength={500} />
          </label>
          <label className="inline">
            <input type="checkbox" name="confirm" value="yes" required /> I understand that revocation is immediate and permanent.
          </label>
          <div className="actions">
            <button type="submit" className="danger">Revoke certificate</button>
            <a href={`/admin/certificates/${id}`}>Cancel</a>
          </div>
        </form>
      )}
    </Console>
  );
}
