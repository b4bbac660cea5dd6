import { portal } from "../../../lib/runtime";
import { attachment, consoleForm } from "../../../lib/http";

/** "Get a proxy now": the file is the response (proxy, its key, the user certificate). */
export async function POST(request: Request) {
  return consoleForm(request, "/account#proxy", async (req) => {
    const { filename, pem } = await portal().console.account.proxyNow(req);
    return attachment(filename, pem, "application/x-pem-file");
  });
}
