import { portal } from "../../../lib/runtime";
import { CertificateTable, Console, Flash, Pager, orUserError, paramsOf, requireAdmin, type SearchParams } from "../../_console/ui";

export const metadata = { title: "Certificates · Admin · Certbridge" };

export default async function AdminCertificates({ searchParams }: { searchParams: SearchParams }) {
  const viewer = await requireAdmin("/admin/certificates");
  const params = await paramsOf(searchParams);
  const p = portal();
  const [result, clients] = await Promise.all([orUserError(p.console.certificates.searchCertificates(params)), p.console.gateways.clients()]);
  const v = (k: string) => params.get(k) ?? "";
  return (
    <Console viewer={viewer} current="/admin/certificates">
      <h1>Issued certificates</h1>
      <Flash params={params} />
      <form method="get" className="filters" role="search" aria-label="Filter certificates">
        <label>Subject contains<input name="subject" defaultValue={v("subject")} placeholder="CN=Alice" /></label>
        <label>Serial<input name="serial" defaultValue={v("serial")} placeholder="hex or decimal" size={14} /></label>
        <label>Kind
          <select name="kind" defaultValue={v("kind")}><option value="">any</option><option value="user">user certificate</option><option value="proxy">proxy</option></select>
        </label>
        <label>Status
          <select name="status" defaultValue={v("status")}><option value="">any</option><option value="valid">valid</option><option value="expired">expired</option><option value="revoked">revoked</option></select>
        </label>
        <label>Gateway
          <select name="client" defaultValue={v("client")}><option value="">any</option>{clients.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}</select>
        </label>
        <label>VO<input name="vo" defaultValue={v("vo")} size={8} /></label>
        <label>Key
          <select name="key" defaultValue={v("key")}><option value="">any</option><option value="csr">CSR (requester&apos;s key)</option><option value="server">server-made</option></select>
        </label>
        {params.get("identity") ? <input type="hidden" name="identity" value={v("identity")} /> : null}
        <button type="submit" className="primary">Search</button>
        <a href="/admin/certificates">Clear</a>
      </form>
      {!result.ok ? (
        <p className="error" role="alert">{result.message}</p>
      ) : result.value.rows.length === 0 ? (
        <p className="muted">No certificates match.</p>
      ) : (
        <>
          <CertificateTable rows={result.value.rows} admin />
          <Pager base="/admin/certificates" params={params} nextCursor={result.value.nextCursor} />
        </>
      )}
    </Console>
  );
}
