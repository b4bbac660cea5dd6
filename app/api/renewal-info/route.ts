import { portal } from "../../../lib/runtime";
import { badRequest, clientIp, jsonError } from "../../../lib/http";

const MAX_BODY = 16 * 1024;

/** POST /api/renewal-info: how long a refresh token can keep renewing proxies (lib/renewal.ts). */
export async function POST(request: Request) {
  try {
    if (!(request.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded")) {
      return jsonError(badRequest("send the parameters as an application/x-www-form-urlencoded body"));
    }
    const body = await request.text();
    if (body.length > MAX_BODY) return jsonError(badRequest(`the request body exceeds ${MAX_BODY} bytes`));
    const r = await portal().renewalInfo({ authorization: request.headers.get("authorization"), params: [...new URLSearchParams(body).entries()], ip: clientIp(request) });
    return new Response(r.body, { status: r.status, headers: r.headers });
  } catch (e) {
    return jsonError(e);
  }
}
