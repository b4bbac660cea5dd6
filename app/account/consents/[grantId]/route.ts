import { portal } from "../../../../lib/runtime";
import { consoleForm, seeOther } from "../../../../lib/http";

/** Withdraw a consent: the grant and its tokens go; the gateway can no longer obtain proxies. */
export async function POST(request: Request, { params }: { params: Promise<{ grantId: string }> }) {
  const { grantId } = await params;
  return consoleForm(request, "/account", async (req) => {
    const { clientId } = await portal().console.account.revokeConsent(req, grantId);
    return seeOther(`/account?done=${encodeURIComponent(`Consent for ${clientId} revoked: it can no longer obtain proxies in your name.`)}#consents`);
  });
}
