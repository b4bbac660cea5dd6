import { portal } from "../../../../lib/runtime";
import { consoleForm, seeOther } from "../../../../lib/http";

export async function POST(request: Request) {
  return consoleForm(request, "/admin/clients/new", async (req) => {
    const p = portal();
    const { id, secret } = await p.console.gateways.saveClient(req);
    if (!secret) return seeOther(`/admin/clients/${id}?done=${encodeURIComponent("Gateway registered.")}`);
    return seeOther(`/admin/clients/${id}/secret`, { ...p.console.gateways.secretFlash(id, secret), secure: p.secureCookies });
  });
}
