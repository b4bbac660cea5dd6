import { portal } from "../../../../lib/runtime";
import { clientIp, jsonError } from "../../../../lib/http";
import { removeSshKey } from "../../../../lib/ssh/registry";

export async function DELETE(request: Request, { params }: { params: Promise<{ id: string }> }) {
  try {
    const p = portal();
    const who = await p.personFromAccessToken(request.headers.get("authorization"));
    await removeSshKey(p.cb.db, who.identityId, (await params).id, { actor: `client:${who.clientId}`, ip: clientIp(request), clientId: who.clientId });
    return new Response(null, { status: 204 });
  } catch (e) {
    return jsonError(e);
  }
}
