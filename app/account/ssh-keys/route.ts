import { portal } from "../../../lib/runtime";
import { consoleForm, seeOther } from "../../../lib/http";

export async function POST(request: Request) {
  return consoleForm(request, "/account#ssh", async (req) => {
    const key = await portal().console.account.addSshKey(req);
    return seeOther(`/account?done=${encodeURIComponent(`SSH key "${key.label}" (${key.fingerprint}) added.`)}#ssh`);
  });
}
