/** Rendered with status 403 by forbidden() (next.config.js: experimental.authInterrupts). */
export default function Forbidden() {
  return (
    <>
      <h1>Administrators only</h1>
      <p role="alert">
        You are signed in, but you are not an administrator of this portal. If you should be, ask the operators to add
        your identifier or entitlement to the portal&apos;s configuration.
      </p>
      <p>
        <a href="/account">Go to your account</a>
      </p>
    </>
  );
}
