import { portal } from "../../../lib/runtime";
import { cookieValue } from "../../../lib/console/session";
import { clientIp, htmlError, seeOther, LOGIN_COOKIE } from "../../../lib/http";

/** The upstream IdP's redirect_uri. Its response is checked by openid-client (state, PKCE, nonce, ID token). */
export async function GET(request: Request) {
  try {
    const p = portal();
    const url = new URL(request.url);
    // Rebuild the public URL: behind a proxy request.url carries the internal host.
    const callback = new URL(`${p.publicUrl}/interaction/callback${url.search}`);
    const cookie = cookieValue(request.headers.get("cookie") ?? "", LOGIN_COOKIE);
    const r = await p.interactions.finishLogin(callback, cookie, clientIp(request));
    return seeOther(r.location, r.cookies);
  } catch (e) {
    return htmlError(e);
  }
}
