import { portal } from "../../../lib/runtime";
import { jsonError, notFoundError } from "../../../lib/http";

/** /voms/<vo>.lsc and /voms/<vo>.vomses: what a site installs to validate this portal's ACs. */
export async function GET(_request: Request, { params }: { params: Promise<{ file: string }> }) {
  const { file } = await params;
  const body = portal().vomsFile(file);
  if (body === null) return jsonError(notFoundError(`no VOMS file ${file} here`));
  return new Response(body, { headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "public, max-age=3600" } });
}
