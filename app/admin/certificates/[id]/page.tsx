import { portal } from "../../../../lib/runtime";
import { CertificateView, Console, Flash, orNotFound, paramsOf, requireAdmin, type SearchParams } from "../../../_console/ui";

export const metadata = { title: "Certificate · Admin · Certbridge" };

export default async function AdminCertificate({ params, searchParams }: { params: Promise<{ id: string }>; searchParams: SearchParams }) {
  const { id } = await params;
  const viewer = await requireAdmin(`/admin/certificates/${id}`);
  const detail = await orNotFound(portal().console.certificates.certificate(id));
  return (
    <Console viewer={viewer} current="/admin/certificates">
      <Flash params={await paramsOf(searchParams)} />
      <CertificateView detail={detail} pemHref={`/admin/certificates/${id}/pem`} admin />
    </Console>
  );
}
