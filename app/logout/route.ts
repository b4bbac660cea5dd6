import { portal } from "../../lib/runtime";
import { seeOther } from "../../lib/http";

/** Ending one's own session needs no CSRF token: the worst a forged request can do is sign someone out. */
export async function POST() {
  const r = portal().interactions.logout();
  return seeOther(r.location, r.cookies);
}
