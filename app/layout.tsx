import type { ReactNode } from "react";
import { portal } from "../lib/runtime";

export const metadata = { title: "Certbridge", description: "Federated login to grid proxy certificates" };
export const dynamic = "force-dynamic";

export default function RootLayout({ children }: { children: ReactNode }) {
  const dev = portal().devIdpEnabled;
  return (
    <html lang="en">
      <head>
        <link rel="stylesheet" href="/portal.css" />
      </head>
      <body>
        {dev ? (
          <p className="dev-banner" role="alert">
            Development mode: sign-in uses the embedded test IdP. Certificates from this portal are for testing only.
          </p>
        ) : null}
        <header className="site">
          <a href="/" className="brand">Certbridge</a>
        </header>
        <main className="card">{children}</main>
      </body>
    </html>
  );
}
