import { portal } from "../../../../lib/runtime";
import { consoleForm, seeOther } from "../../../../lib/http";

/** Withdraw a consent (confirmed on /account/consents/<id>/revoke): the grant and its tokens go. */
export async function POST(request: Request, { params }: { params: Promise<{ grantId: string }> }) {
  const { grantId } = await params;
  const confirmPage = `/account/consents/${encodeURIComponent(grantId)}/revoke`;
  return consoleForm(request, "/account#consents", async (req) => {
    if (req.form.get("confirm") !== "yes") return seeOther(confirmPage);
    const { summary } = await portal().console.account.revokeConsent(req, grantId);
    return seeOther(`/account?done=${encodeURIComponent(summary)}#consents`);
  });
}
