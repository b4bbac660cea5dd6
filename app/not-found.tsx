/** Every unknown path and every notFound(): in the portal's layout, with a way on. */
export default function NotFound() {
  return (
    <>
      <h1>Page not found</h1>
      <p role="alert">There is nothing at this address, or it is no longer here (a revoked consent, a removed key or gateway).</p>
      <p className="actions">
        <a href="/">The portal&apos;s home page</a> <a href="/account">Your account</a>
      </p>
    </>
  );
}
