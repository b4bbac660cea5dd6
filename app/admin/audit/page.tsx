import { portal } from "../../../lib/runtime";
import { AuditTable, Console, Flash, Pager, orUserError, paramsOf, requireAdmin, type SearchParams } from "../../_console/ui";

export const metadata = { title: "Audit log · Admin · Certbridge" };

const ACTIONS = ["", "login", "console.login", "consent.", "consent.grant", "consent.deny", "consent.revoke", "token.", "token.issue", "token.refuse", "proxy.", "proxy.issue", "proxy.refuse", "certificate.issue", "certificate.revoke", "client.", "admin.refuse", "audit.export", "identity.create"];

export default async function AdminAudit({ searchParams }: { searchParams: SearchParams }) {
  const viewer = await requireAdmin("/admin/audit");
  const params = await paramsOf(searchParams);
  const result = await orUserError(portal().console.audit.auditLog(params));
  const v = (k: string) => params.get(k) ?? "";
  const exportParams = new URLSearchParams(params);
  for (const k of ["cursor", "error", "done"]) exportParams.delete(k);
  return (
    <Console viewer={viewer} current="/admin/audit">
      <h1>Audit log</h1>
      <Flash params={params} />
      <form method="get" className="filters" role="search" aria-label="Filter the audit log">
        <label>Action
          <select name="action" defaultValue={v("action")}>
            {ACTIONS.map((a) => <option key={a} value={a}>{a === "" ? "any" : a.endsWith(".") ? `${a}*` : a}</option>)}
          </select>
        </label>
        <label>Outcome
          <select name="outcome" defaultValue={v("outcome")}><option value="">any</option><option value="success">success</option><option value="refused">refused</option><option value="failure">failure</option></select>
        </label>
        <label>Actor<input name="actor" defaultValue={v("actor")} placeholder="client:… / user:… / admin:…" /></label>
        <label>Gateway<input name="client" defaultValue={v("client")} size={14} /></label>
        <label>From<input type="date" name="from" defaultValue={v("from")} /></label>
        <label>To<input type="date" name="to" defaultValue={v("to")} /></label>
        {params.get("identity") ? <input type="hidden" name="identity" value={v("identity")} /> : null}
        <button type="submit" className="primary">Filter</button>
        <a href="/admin/audit">Clear</a>
      </form>
      <p>
        Export these events: <a href={`/admin/audit/export?${new URLSearchParams([...exportParams, ["format", "csv"]]).toString()}`}>CSV</a> ·{" "}
        <a href={`/admin/audit/export?${new URLSearchParams([...exportParams, ["format", "jsonl"]]).toString()}`}>JSON lines</a>
      </p>
      {result.ok ? (
        <>
          <AuditTable rows={result.value.rows} links />
          <Pager base="/admin/audit" params={params} nextCursor={result.value.nextCursor} />
        </>
      ) : (
        <p className="error" role="alert">{result.message}</p>
      )}
    </Console>
  );
}
