import { portal } from "../../lib/runtime";
import { paramsOf, type SearchParams } from "../_console/ui";

export const metadata = { title: "Signed out · Certbridge" };

/** After "Sign out": says what ended, and offers to end the upstream IdP's session too (RP-initiated logout). */
export default async function SignedOut({ searchParams }: { searchParams: SearchParams }) {
  const params = await paramsOf(searchParams);
  const { idpName, endSessionUrl } = await portal().interactions.signedOut();
  if (params.get("state") === "upstream") {
    return (
      <>
        <h1>Signed out</h1>
        <p role="status">You are signed out of Certbridge and of {idpName}. The next sign-in asks who you are again.</p>
        <p><a href="/account">Sign in again</a></p>
      </>
    );
  }
  return (
    <>
      <h1>Signed out of Certbridge</h1>
      <p role="status">
        You are signed out of Certbridge&apos;s consoles. You may still be signed in at {idpName}, so the next sign-in here may
        not ask for your password.
      </p>
      {endSessionUrl ? (
        <p className="actions">
          <a className="button" href={endSessionUrl}>Sign out of {idpName} too</a>
          <a href="/">Back to the portal</a>
        </p>
      ) : (
        <p>
          {idpName} offers no way for Certbridge to end its session: sign out there yourself, or close the browser, on a shared
          computer.
        </p>
      )}
    </>
  );
}
