import { portal } from "../../../../lib/runtime";
import { consoleForm, seeOther } from "../../../../lib/http";

/** Delete one of the person's SSH keys (a form post: browsers cannot send DELETE). */
export async function POST(request: Request, { params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return consoleForm(request, "/account#ssh", async (req) => {
    await portal().console.account.deleteSshKey(req, id);
    return seeOther(`/account?done=${encodeURIComponent("SSH key deleted: it no longer logs you in.")}#ssh`);
  });
}
