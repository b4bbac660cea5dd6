import { portal } from "../../../../../lib/runtime";
import { Console, Csrf, Flash, Time, orNotFound, paramsOf, requireViewer, type SearchParams } from "../../../../_console/ui";

export const metadata = { title: "Revoke a consent · Certbridge" };

/** Asks before a consent goes, and says what will go with it. */
export default async function RevokeConsent({ params, searchParams }: { params: Promise<{ grantId: string }>; searchParams: SearchParams }) {
  const { grantId } = await params;
  const viewer = await requireViewer(`/account/consents/${encodeURIComponent(grantId)}/revoke`);
  const c = await orNotFound(portal().console.account.consent(viewer, grantId));
  return (
    <Console viewer={viewer} current="/account">
      <h1>Revoke your consent for {c.clientName}?</h1>
      <Flash params={await paramsOf(searchParams)} />
      <div className="table-wrap">
        <table className="data kv">
          <tbody>
            <tr><th scope="row">Gateway</th><td>{c.clientName} <span className="hint">({c.clientId})</span></td></tr>
            <tr><th scope="row">Access</th><td>{c.scopes.join(", ")}</td></tr>
            <tr><th scope="row">Given</th><td><Time at={c.grantedAt} /></td></tr>
            <tr><th scope="row">Valid refresh tokens</th><td>{c.refreshTokens}</td></tr>
          </tbody>
        </table>
      </div>
      <p className="warning">
        {c.clientName} will no longer be able to obtain proxies in your name.
        {c.refreshTokens ? " Services renewing proxies with its refresh tokens (certbridge-proxy-init --renew) stop at their next renewal." : ""}{" "}
        Proxies already issued stay valid until they expire.
      </p>
      <form method="post" action={`/account/consents/${encodeURIComponent(grantId)}`} className="actions">
        <Csrf viewer={viewer} />
        <input type="hidden" name="confirm" value="yes" />
        <button type="submit" className="danger">Revoke consent for {c.clientName}</button>
        <a href="/account#consents">Cancel</a>
      </form>
    </Console>
  );
}
