import { portal } from "../../../../lib/runtime";
import { CertificateView, Console, orNotFound, requireViewer } from "../../../_console/ui";

export const metadata = { title: "Certificate · Certbridge" };

export default async function AccountCertificate({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const viewer = await requireViewer(`/account/certificates/${id}`);
  const detail = await orNotFound(portal().console.certificates.certificate(id, viewer.identity.id));
  return (
    <Console viewer={viewer} current="/account">
      <CertificateView detail={detail} pemHref={`/account/certificates/${id}/pem`} admin={false} />
    </Console>
  );
}
