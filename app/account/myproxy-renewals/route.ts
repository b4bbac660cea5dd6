import { portal } from "../../../lib/runtime";
import { consoleForm, seeOther } from "../../../lib/http";

/** Consent to MyProxy renewal by a registered VO box, for one VO (and role), until a chosen day. */
export async function POST(request: Request) {
  return consoleForm(request, "/account#myproxy-renewal", async (req) => {
    const c = await portal().console.account.addRenewalConsent(req);
    return seeOther(`/account?done=${encodeURIComponent(`${c.renewer} may now renew your proxies for ${c.what} until ${c.expiresAt.toISOString()}.`)}#myproxy-renewal`);
  });
}
