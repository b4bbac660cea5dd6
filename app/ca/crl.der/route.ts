import { portal } from "../../../lib/runtime";
import { jsonError } from "../../../lib/http";

/**
 * The CRL distribution point named in every user certificate (RFC 5280 §4.2.1.13): the stored CRL,
 * re-signed on revocation and on schedule (lib/ca/revocation.ts), cacheable until its nextUpdate.
 */
export async function GET(request: Request) {
  try {
    const r = await portal().crl(request.headers.get("if-none-match"));
    return new Response(r.body ? Buffer.from(r.body) : null, { status: r.status, headers: r.headers });
  } catch (e) {
    return jsonError(e);
  }
}
