import { portal } from "../../../lib/runtime";

export function GET() {
  return new Response(portal().caCertificatePem(), { headers: { "content-type": "application/x-pem-file", "cache-control": "public, max-age=3600" } });
}
