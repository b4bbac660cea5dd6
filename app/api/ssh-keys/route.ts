import { portal } from "../../../lib/runtime";
import { badRequest, clientIp, jsonError } from "../../../lib/http";
import { registerSshKey, sshKeysOf } from "../../../lib/ssh/registry";

/** Gateways manage a person's SSH keys with that person's access token (scope proxy). */
export async function GET(request: Request) {
  try {
    const p = portal();
    const who = await p.personFromAccessToken(request.headers.get("authorization"));
    return Response.json({ keys: await sshKeysOf(p.cb.db, who.identityId) }, { headers: { "cache-control": "no-store" } });
  } catch (e) {
    return jsonError(e);
  }
}

export async function POST(request: Request) {
  try {
    const p = portal();
    const who = await p.personFromAccessToken(request.headers.get("authorization"));
    const body: unknown = await request.json().catch(() => {
      throw badRequest('expected a JSON body: {"publicKey": "ssh-ed25519 AAAA…", "label": "…"}');
    });
    const key = await registerSshKey(p.cb.db, who.identityId, body, { actor: `client:${who.clientId}`, ip: clientIp(request), clientId: who.clientId });
    return Response.json(key, { status: 201, headers: { "cache-control": "no-store" } });
  } catch (e) {
    return jsonError(e);
  }
}
