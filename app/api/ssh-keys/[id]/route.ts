import { portal } from "../../../../lib/runtime";
import { clientIp, jsonError } from "../../../../lib/http";

export async function DELETE(request: Request, { params }: { params: Promise<{ id: string }> }) {
  try {
    await portal().sshKeysApi.remove(request.headers.get("authorization"), (await params).id, clientIp(request));
    return new Response(null, { status: 204 });
  } catch (e) {
    return jsonError(e);
  }
}
