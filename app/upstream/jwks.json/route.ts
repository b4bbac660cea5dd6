import { portal } from "../../../lib/runtime";
import { htmlError, notFoundError } from "../../../lib/http";

/** The portal's public key set for private_key_jwt at the upstream IdP (register this URL as the client's jwks_uri). */
export function GET() {
  const jwks = portal().upstreamJwks();
  if (!jwks) return htmlError(notFoundError("the portal authenticates to its identity provider with a client secret: no key set"));
  return Response.json(jwks, { headers: { "cache-control": "public, max-age=300" } });
}
