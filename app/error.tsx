"use client";

/** An unexpected failure while rendering a page: in the portal's layout, never a stack trace. */
export default function ErrorPage({ reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <>
      <h1>Something went wrong</h1>
      <p role="alert">The portal could not show this page. The problem has been logged; try again in a moment.</p>
      <p className="actions">
        <button type="button" onClick={() => reset()}>Try again</button> <a href="/">The portal&apos;s home page</a>
      </p>
    </>
  );
}
