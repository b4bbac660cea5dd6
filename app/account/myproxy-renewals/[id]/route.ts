import { portal } from "../../../../lib/runtime";
import { consoleForm, seeOther } from "../../../../lib/http";

/** Withdraw a renewal consent (a form post: browsers cannot send DELETE). */
export async function POST(request: Request, { params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return consoleForm(request, "/account#myproxy-renewal", async (req) => {
    await portal().console.account.revokeRenewalConsent(req, id);
    return seeOther(`/account?done=${encodeURIComponent("Renewal consent revoked: that VO box can no longer renew your proxy.")}#myproxy-renewal`);
  });
}
