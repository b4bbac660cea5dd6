import { portal } from "../lib/runtime";

export default function Home() {
  const { publicUrl: base, vos } = portal().about();
  return (
    <>
      <h1>Certbridge</h1>
      <p>
        Certbridge turns your federated login into short-lived grid proxy certificates (RFC 3820) for the science
        gateways you use. You never handle a certificate yourself: a gateway asks you to sign in here, you consent,
        and it receives proxies in your name.
      </p>
      <p className="actions">
        <a href="/account">Your account</a> (your certificates, the gateways you allowed, a proxy download)
      </p>
      <h2>For gateway developers</h2>
      <ul>
        <li>OpenID configuration: <code>{base}/.well-known/openid-configuration</code></li>
        <li>Proxies: <code>POST {base}/getproxy</code> with the user&apos;s access token and a CSR</li>
      </ul>
      <h2>For operators</h2>
      <ul>
        <li><a href="/admin">Admin console</a>: issued certificates, gateways, the audit log</li>
      </ul>
      <h2>For sites</h2>
      <ul>
        <li><a href="/ca/ca.pem">CA certificate</a> (PEM)</li>
        <li><a href="/ca/crl.der">Certificate revocation list</a> (DER)</li>
        {vos.map((vo) => (
          <li key={vo}>
            VO {vo}: <a href={`/voms/${vo}.lsc`}>{vo}.lsc</a> (install as <code>vomsdir/{vo}/&lt;host&gt;.lsc</code>),{" "}
            <a href={`/voms/${vo}.vomses`}>vomses line</a>
          </li>
        ))}
      </ul>
    </>
  );
}
