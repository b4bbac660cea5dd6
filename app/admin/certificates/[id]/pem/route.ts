import { portal } from "../../../../../lib/runtime";
import { attachment, htmlError } from "../../../../../lib/http";
import { CertbridgeError } from "../../../../../lib/errors";

export async function GET(request: Request, { params }: { params: Promise<{ id: string }> }) {
  try {
    const p = portal();
    const viewer = await p.console.viewer(request.headers.get("cookie") ?? "");
    if (!viewer?.admin) throw new CertbridgeError("access_denied", "administrators only");
    const { filename, pem } = await p.console.certificatePem((await params).id);
    return attachment(filename, pem, "application/x-pem-file");
  } catch (e) {
    return htmlError(e, "Download failed");
  }
}
