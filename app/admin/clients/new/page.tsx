import { portal } from "../../../../lib/runtime";
import { Console, Flash, paramsOf, requireAdmin, type SearchParams } from "../../../_console/ui";
import { ClientForm } from "../form";

export const metadata = { title: "Register a gateway · Admin · Certbridge" };

export default async function NewClient({ searchParams }: { searchParams: SearchParams }) {
  const viewer = await requireAdmin("/admin/clients/new");
  return (
    <Console viewer={viewer} current="/admin/clients">
      <h1>Register a gateway</h1>
      <Flash params={await paramsOf(searchParams)} />
      <ClientForm viewer={viewer} action="/admin/clients/register" servedVos={portal().console.gateways.servedVos} />
    </Console>
  );
}
