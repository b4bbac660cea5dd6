import { portal } from "../../../lib/runtime";
import { jsonError, notFoundError } from "../../../lib/http";

/** /ca/<hash>.info, .crl_url, .signing_policy, .namespaces, .0, .r0: the CA's IGTF trust files, one by one. */
export async function GET(_request: Request, { params }: { params: Promise<{ file: string }> }) {
  try {
    const { file } = await params;
    const r = await portal().trustFile(file);
    if (r === null) return jsonError(notFoundError(`no trust file ${file} here (try <hash>.info, .crl_url, .signing_policy, .namespaces, .0 or .r0)`));
    return new Response(r.body, { headers: { "content-type": r.contentType, "cache-control": r.cacheControl } });
  } catch (e) {
    return jsonError(e);
  }
}
