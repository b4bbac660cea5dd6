import { portal } from "../../lib/runtime";
import { badRequest, clientIp, jsonError, toResponse } from "../../lib/http";

const MAX_BODY = 32 * 1024;

/** The MasterPortal's SSH-key API (lib/ssh/masterPortalKeys.ts): parameters in the query or a form body. */
async function handle(request: Request) {
  try {
    const params: [string, string][] = [...new URL(request.url).searchParams.entries()];
    if (request.method === "POST") {
      const body = await request.text();
      if (body.length > MAX_BODY) return jsonError(badRequest(`the request body exceeds ${MAX_BODY} bytes`));
      if (body.length > 0) {
        if (!(request.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded")) return jsonError(badRequest("POST bodies must be application/x-www-form-urlencoded"));
        params.push(...new URLSearchParams(body).entries());
      }
    }
    return toResponse(await portal().sshKeysApi.masterPortal({ authorization: request.headers.get("authorization"), params, ip: clientIp(request) }));
  } catch (e) {
    return jsonError(e);
  }
}

export const GET = handle;
export const POST = handle;
