import { portal } from "../../../../../../lib/runtime";
import { consoleForm, notFoundError, seeOther } from "../../../../../../lib/http";

const DONE = { update: "Changes saved.", token_policy: "Token policy saved.", suspend: "Gateway suspended: its tokens stop working at /getproxy.", activate: "Gateway active again.", rotate: "", delete: "" } as const;

/** Every change to one gateway: update, token_policy, suspend, activate, rotate (the secret), delete. */
export async function POST(request: Request, { params }: { params: Promise<{ id: string; op: string }> }) {
  const { id, op } = await params;
  return consoleForm(request, `/admin/clients/${id}`, async (req) => {
    const p = portal();
    if (op === "update") {
      await p.console.gateways.saveClient(req, id);
    } else if (op === "token_policy") {
      await p.console.gateways.saveTokenPolicy(req, id);
    } else if (op === "suspend" || op === "activate" || op === "rotate" || op === "delete") {
      const { secret } = await p.console.gateways.changeClient(req, id, op);
      if (secret) return seeOther(`/admin/clients/${id}/secret`, { ...p.console.gateways.secretFlash(id, secret), secure: p.secureCookies });
      if (op === "delete") return seeOther(`/admin/clients?done=${encodeURIComponent(`Gateway ${id} deleted with its consents and tokens.`)}`);
    } else {
      throw notFoundError(`unknown action ${op}`);
    }
    return seeOther(`/admin/clients/${id}?done=${encodeURIComponent(DONE[op])}`);
  });
}
