import { portal } from "../../../../../lib/runtime";
import { consoleForm, seeOther } from "../../../../../lib/http";

export async function POST(request: Request, { params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return consoleForm(request, `/admin/certificates/${id}/revoke`, async (req) => {
    const revoked = await portal().console.certificates.revokeCertificate(req, id);
    return seeOther(`/admin/certificates/${id}?done=${encodeURIComponent(`Certificate ${revoked.serialHex} revoked (${revoked.reason}); the CRL lists it now.`)}`);
  });
}
