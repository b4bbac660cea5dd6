import { portal } from "../../lib/runtime";
import { badRequest, clientIp, jsonError } from "../../lib/http";

/**
 * /getproxy adapter: collect the token and parameters from the query and a
 * form body (MasterPortal clients use both), hand them to lib/getproxy.ts.
 */
async function handle(request: Request): Promise<Response> {
  const params: [string, string][] = [...new URL(request.url).searchParams.entries()];
  if (request.method === "POST") {
    const type = request.headers.get("content-type") ?? "";
    if (!type.startsWith("application/x-www-form-urlencoded") && !type.startsWith("multipart/form-data") && (await request.clone().text()).length > 0) {
      return jsonError(badRequest("POST bodies must be application/x-www-form-urlencoded"));
    }
    if (type) {
      for (const [k, v] of (await request.formData()).entries()) if (typeof v === "string") params.push([k, v]);
    }
  }
  const r = await portal().getProxy({ authorization: request.headers.get("authorization"), params, ip: clientIp(request) });
  return new Response(r.body, { status: r.status, headers: r.headers });
}

export const GET = handle;
export const POST = handle;
