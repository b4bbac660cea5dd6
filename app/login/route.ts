import { portal } from "../../lib/runtime";
import { htmlError, seeOther } from "../../lib/http";

/** Sign in to the consoles: the upstream login, then back to `next` (a path on this portal). */
export async function GET(request: Request) {
  try {
    const r = await portal().interactions.startConsoleLogin(new URL(request.url).searchParams.get("next"));
    return seeOther(r.location, r.cookies);
  } catch (e) {
    return htmlError(e);
  }
}
