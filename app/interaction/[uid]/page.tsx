import { cookies } from "next/headers";
import { portal } from "../../../lib/runtime";
import { describeError } from "../../../lib/http";
import type { InteractionView } from "../../../lib/portal";

export const dynamic = "force-dynamic";

const SCOPE_TEXT: Record<string, string> = {
  openid: "Your identifier at this portal",
  profile: "Your name and the subject (DN) of your certificates",
  email: "Your email address",
  offline_access: "Keep access while you are away (refresh tokens)",
  proxy: "Obtain proxy certificates in your name, and their subject (DN)",
  "edu.uiuc.ncsa.myproxy.getcert": "Obtain proxy certificates in your name, and their subject (DN)",
  eduperson_entitlement: "Your entitlements (group memberships) as your home organisation released them",
  "wlcg.groups": "Your groups (WLCG group paths, as in your VOMS attributes)",
};

export default async function Interaction({ params }: { params: Promise<{ uid: string }> }) {
  const { uid } = await params;
  let view: InteractionView;
  try {
    view = await portal().interactions.view((await cookies()).toString(), uid);
  } catch (e) {
    return (
      <>
        <h1>Sign-in could not continue</h1>
        <p role="alert">{describeError(e).message}</p>
      </>
    );
  }
  if (view.kind === "login") {
    return (
      <>
        <h1>Sign in to continue to {view.clientName}</h1>
        <p>
          <strong>{view.clientName}</strong> asks Certbridge to identify you. You will sign in at {view.idpName}, your
          home organisation&apos;s login.
        </p>
        {view.terminal ? (
          <p className="terminal">
            This is a command-line login. Your terminal shows the code <code>{view.terminal.userCode}</code>.
          </p>
        ) : null}
        <form method="post" action={`/interaction/${uid}/login`} className="actions">
          <button type="submit" className="primary">
            Continue to sign in
          </button>
        </form>
      </>
    );
  }
  const descriptions = [...new Set(view.scopes.map((s) => SCOPE_TEXT[s] ?? s))];
  return (
    <>
      <h1>
        Allow {view.client.name} to act in your name?
      </h1>
      <p>
        Signed in as <strong>{view.person.name}</strong>.{" "}
        {view.client.homepage ? (
          <>
            The request comes from <a href={view.client.homepage}>{view.client.name}</a> (<code>{new URL(view.client.homepage).host}</code>).
          </>
        ) : null}
      </p>
      {view.terminal ? (
        <div className="terminal-notice" role="note">
          <p>
            <strong>This request comes from a terminal</strong> (command-line login with <code>certbridge-proxy-init</code>
            {view.terminal.ip ? (
              <>
                , from <code>{view.terminal.ip}</code>
              </>
            ) : null}
            ). Your terminal must show this code:
          </p>
          <p className="user-code">
            <code id="terminal-user-code">{view.terminal.userCode}</code>
          </p>
          <p>Allow only if you started this login yourself and the codes match.</p>
        </div>
      ) : null}
      <p>It will receive:</p>
      <ul className="scopes">
        {descriptions.map((d) => (
          <li key={d}>{d}</li>
        ))}
      </ul>
      {view.proxyAccess ? (
        <p className="warning">
          <strong>{view.client.name}</strong> will be able to obtain certificates in your name, each valid for up to{" "}
          <strong>{view.maxProxyLifetime}</strong>, carrying your certificate subject <span className="dn">{view.person.subject}</span>
          {view.offline && view.refreshUntil ? (
            <>
              , and to keep doing so without asking you again until <strong>{new Date(view.refreshUntil).toUTCString()}</strong> unless you revoke this consent
              {view.refreshTokenIdle ? <> (or until it stops using its access for {view.refreshTokenIdle})</> : null}
            </>
          ) : (
            <> while this sign-in lasts</>
          )}
          .
        </p>
      ) : null}
      {view.replaces ? (
        <p className="notice" id="replaces-consent">
          This replaces the consent you gave {view.client.name}
          {view.replaces.grantedAt ? <> on {new Date(view.replaces.grantedAt).toUTCString()}</> : null}
          {view.replaces.refreshTokens
            ? <>: its {view.replaces.refreshTokens} refresh token{view.replaces.refreshTokens === 1 ? "" : "s"} (for example a service renewing proxies) will stop working</>
            : null}
          . You keep one consent per gateway.
        </p>
      ) : null}
      <form method="post" action={`/interaction/${uid}/confirm`} className="actions">
        <button type="submit" name="decision" value="allow" className="primary">
          Allow
        </button>
        <button type="submit" name="decision" value="deny">
          Deny
        </button>
      </form>
    </>
  );
}
