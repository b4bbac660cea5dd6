import { portal } from "../../../lib/runtime";
import { formatDuration } from "../../../lib/duration";
import { Badge, Console, Flash, paramsOf, requireAdmin, type SearchParams } from "../../_console/ui";

export const metadata = { title: "Gateways · Admin · Certbridge" };

export default async function AdminClients({ searchParams }: { searchParams: SearchParams }) {
  const viewer = await requireAdmin("/admin/clients");
  const clients = await portal().console.gateways.clients();
  return (
    <Console viewer={viewer} current="/admin/clients">
      <h1>Gateways</h1>
      <Flash params={await paramsOf(searchParams)} />
      <p><a href="/admin/clients/new">Register a gateway…</a></p>
      <div className="table-wrap">
        <table className="data responsive">
          <thead><tr><th scope="col">Name</th><th scope="col">Client id</th><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Max proxy</th><th scope="col">VOs</th><th scope="col">Proxies (30 d)</th></tr></thead>
          <tbody>
            {clients.map((c) => (
              <tr key={c.id}>
                <td data-label="Name"><a href={`/admin/clients/${c.id}`}>{c.name}</a></td>
                <td data-label="Client id"><code>{c.id}</code></td>
                <td data-label="Type">{c.isPublic ? "public" : "confidential"}</td>
                <td data-label="Status"><Badge value={c.status} /></td>
                <td data-label="Max proxy">{formatDuration(c.maxProxyLifetime)}</td>
                <td data-label="VOs">{c.allowedVos ? c.allowedVos.join(", ") || "none" : "any"}</td>
                <td data-label="Proxies (30 d)">{c.proxies30d}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Console>
  );
}
