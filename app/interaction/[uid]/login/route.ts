import { portal } from "../../../../lib/runtime";
import { htmlError, seeOther } from "../../../../lib/http";

export async function POST(request: Request, { params }: { params: Promise<{ uid: string }> }) {
  try {
    const { uid } = await params;
    const r = await portal().interactions.startLogin(request.headers.get("cookie") ?? "", uid);
    return seeOther(r.location, r.cookies);
  } catch (e) {
    return htmlError(e);
  }
}
