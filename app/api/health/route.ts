import { portal } from "../../../lib/runtime";

export function GET() {
  const p = portal();
  return Response.json({ ok: true, issuer: p.cb.config.portal.issuer, ca: p.cb.ca.subject, devIdp: p.devIdpEnabled });
}
