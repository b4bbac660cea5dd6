import { z } from "zod";
import { portal } from "../../../../lib/runtime";
import { badRequest, clientIp, htmlError, seeOther } from "../../../../lib/http";

const form = z.object({ decision: z.enum(["allow", "deny"]) });

export async function POST(request: Request, { params }: { params: Promise<{ uid: string }> }) {
  try {
    const { uid } = await params;
    const parsed = form.safeParse(Object.fromEntries(await request.formData()));
    if (!parsed.success) return htmlError(badRequest("choose Allow or Deny"));
    const r = await portal().interactions.decideConsent(request.headers.get("cookie") ?? "", uid, parsed.data.decision === "allow", clientIp(request));
    return seeOther(r.location);
  } catch (e) {
    return htmlError(e);
  }
}
