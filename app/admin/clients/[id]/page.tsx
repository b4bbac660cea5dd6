import { portal } from "../../../../lib/runtime";
import { AuditTable, Badge, Console, Csrf, Flash, formFlash, orNotFound, paramsOf, requireAdmin, type SearchParams } from "../../../_console/ui";
import { ClientForm, TokenPolicyForm } from "../form";

export const metadata = { title: "Gateway · Admin · Certbridge" };

export default async function AdminClient({ params, searchParams }: { params: Promise<{ id: string }>; searchParams: SearchParams }) {
  const { id } = await params;
  const viewer = await requireAdmin(`/admin/clients/${id}`);
  const c = portal().console.gateways;
  const client = await orNotFound(c.client(id));
  const act = (op: string) => `/admin/clients/${id}/action/${op}`;
  // a refused edit comes back into the edit form; other refusals (status, rotate, delete) above
  const flash = await formFlash(`/admin/clients/${id}`);
  const editFlash = flash?.values.redirect_uris !== undefined ? flash : null;
  return (
    <Console viewer={viewer} current="/admin/clients">
      <h1>
        {client.name} <Badge value={client.status} />
      </h1>
      <Flash params={await paramsOf(searchParams)} />
      {flash && !editFlash ? <p className="error" role="alert">{flash.error}</p> : null}
      <p>
        Client id <code>{client.id}</code>, {client.isPublic ? "public" : "confidential"}. <a href={`/admin/certificates?client=${encodeURIComponent(client.id)}`}>Its certificates</a> ·{" "}
        <a href={`/admin/audit?client=${encodeURIComponent(client.id)}`}>its audit events</a>
      </p>

      <h2>Status</h2>
      <form method="post" action={act(client.status === "active" ? "suspend" : "activate")} className="filters">
        <Csrf viewer={viewer} />
        <label>Reason<input name="reason" required minLength={3} maxLength={500} size={40} /></label>
        <button type="submit" className={client.status === "active" ? "danger" : "primary"}>{client.status === "active" ? "Suspend gateway" : "Reactivate gateway"}</button>
      </form>
      <p className="hint">A suspended gateway cannot sign users in, refresh tokens or obtain proxies; its existing consents are kept.</p>

      {client.builtIn ? (
        <p className="notice">
          This is the portal&apos;s built-in client for <code>certbridge-proxy-init</code> (terminal logins with the device
          flow, and renewal with refresh tokens). It cannot be edited or deleted; suspend it to switch terminal logins off.
        </p>
      ) : null}

      {client.isPublic ? null : (
        <>
          <h2>Secret</h2>
          <form method="post" action={act("rotate")} className="filters">
            <Csrf viewer={viewer} />
            <label>Reason<input name="reason" required minLength={3} maxLength={500} size={40} /></label>
            <button type="submit">Rotate secret</button>
          </form>
          <p className="hint">The new secret is shown once; the old one stops working immediately.</p>
        </>
      )}

      {client.builtIn ? null : (
        <>
          <h2>Settings</h2>
          <ClientForm viewer={viewer} action={act("update")} client={client} servedVos={c.servedVos} flash={editFlash} />

          <h2>Tokens for compute elements</h2>
          <p className="hint">
            Now: {client.tokenPolicy.format === "wlcg" ? "WLCG profile JWTs" : "opaque tokens"}
            {client.tokenPolicy.format === "wlcg" ? `, audiences ${client.tokenPolicy.audiences?.join(", ") ?? "any"}` : ""}; compute scopes{" "}
            {client.tokenPolicy.compute ? `permitted${client.tokenPolicy.computeGroups.length ? ` (user tokens: ${client.tokenPolicy.computeGroups.join(", ")})` : " (robots only)"}` : "not permitted"}; token exchange{" "}
            {client.tokenPolicy.exchange ? "allowed" : "off"}; device flow {client.tokenPolicy.deviceGrant ? "allowed" : "off"}. <a href={`/admin/audit?client=${encodeURIComponent(client.id)}&action=token.`}>Tokens issued</a>
          </p>
          <TokenPolicyForm viewer={viewer} action={act("token_policy")} policy={client.tokenPolicy} />

          <h2>Delete</h2>
          <form method="post" action={act("delete")} className="filters">
            <Csrf viewer={viewer} />
            <label>Type <code>{client.id}</code> to confirm<input name="confirm" required autoComplete="off" /></label>
            <label>Reason<input name="reason" required minLength={3} maxLength={500} size={30} /></label>
            <button type="submit" className="danger">Delete gateway</button>
          </form>
          <p className="hint">Deleting removes the gateway with every consent and token issued to it. Its certificates and audit history stay.</p>
        </>
      )}

      <h2>Recent changes</h2>
      <AuditTable rows={client.recent} />
    </Console>
  );
}
