import { portal } from "../../../lib/runtime";
import { jsonError } from "../../../lib/http";

/** The CRL distribution point named in every user certificate (RFC 5280 §4.2.1.13): always current. */
export async function GET() {
  try {
    const der = await portal().crl();
    return new Response(Buffer.from(der), { headers: { "content-type": "application/pkix-crl", "cache-control": "no-cache" } });
  } catch (e) {
    return jsonError(e);
  }
}
