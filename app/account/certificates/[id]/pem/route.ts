import { portal } from "../../../../../lib/runtime";
import { attachment, clientIp, htmlError } from "../../../../../lib/http";

export async function GET(request: Request, { params }: { params: Promise<{ id: string }> }) {
  try {
    const p = portal();
    const viewer = await p.console.gate.require({ cookie: request.headers.get("cookie") ?? "", ip: clientIp(request) }, "person", "certificate.download");
    const { filename, pem } = await p.console.certificates.certificatePem((await params).id, viewer.identity.id);
    return attachment(filename, pem, "application/x-pem-file");
  } catch (e) {
    return htmlError(e, "Download failed");
  }
}
