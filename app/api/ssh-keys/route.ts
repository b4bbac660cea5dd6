import { portal } from "../../../lib/runtime";
import { badRequest, clientIp, jsonError } from "../../../lib/http";

/** Gateways manage a person's SSH keys with that person's access token (scope proxy). */
export async function GET(request: Request) {
  try {
    const keys = await portal().sshKeysApi.list(request.headers.get("authorization"));
    return Response.json({ keys }, { headers: { "cache-control": "no-store" } });
  } catch (e) {
    return jsonError(e);
  }
}

export async function POST(request: Request) {
  try {
    const readBody = (): Promise<unknown> =>
      request.json().catch(() => {
        throw badRequest('expected a JSON body: {"publicKey": "ssh-ed25519 AAAA…", "label": "…"}');
      });
    const key = await portal().sshKeysApi.add(request.headers.get("authorization"), readBody, clientIp(request));
    return Response.json(key, { status: 201, headers: { "cache-control": "no-store" } });
  } catch (e) {
    return jsonError(e);
  }
}
