import { portal } from "../../lib/runtime";
import { seeOther } from "../../lib/http";

/** Ending one's own session needs no CSRF token: the worst a forged request can do is sign someone out. */
export async function POST(request: Request) {
  const r = await portal().interactions.logout(request.headers.get("cookie") ?? "");
  return seeOther(r.location, r.cookies);
}
