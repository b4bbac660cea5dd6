import { portal } from "../../../../../lib/runtime";
import { attachment, htmlError, notFoundError } from "../../../../../lib/http";

export async function GET(request: Request, { params }: { params: Promise<{ id: string }> }) {
  try {
    const p = portal();
    const viewer = await p.console.viewer(request.headers.get("cookie") ?? "");
    if (!viewer) throw notFoundError("sign in to download your certificates");
    const { filename, pem } = await p.console.certificatePem((await params).id, viewer.identity.id);
    return attachment(filename, pem, "application/x-pem-file");
  } catch (e) {
    return htmlError(e, "Download failed");
  }
}
