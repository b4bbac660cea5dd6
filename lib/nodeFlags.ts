/**
 * Node.js flags the portal's serving processes run with.
 *
 * AsyncLocalStorage (Next.js keeps its request context in several) is built
 * on promise hooks in Node 22: every promise created anywhere in the process
 * then pays an init hook and a context copy. With AsyncContextFrame
 * (`--experimental-async-context-frame`, the default from Node 24) the
 * context travels with the promise and no hook runs. On /getproxy that is
 * about a tenth of a request's CPU here (bench/throughput.ts, issue 18).
 */
export const ASYNC_CONTEXT_FRAME = "--experimental-async-context-frame";

/**
 * The arguments a serving process is started with: `execArgv` plus the flags above where this Node
 * accepts them and they are not given (or refused with `--no-…`) already.
 */
export function servingExecArgv(execArgv: readonly string[], accepted: ReadonlySet<string> = process.allowedNodeEnvironmentFlags): string[] {
  const args = [...execArgv];
  // Node 22 spells the refusal --no-experimental-…, Node 24 --no-async-context-frame.
  const given = [ASYNC_CONTEXT_FRAME, "--no-experimental-async-context-frame", "--no-async-context-frame"].some((f) => args.includes(f));
  if (accepted.has(ASYNC_CONTEXT_FRAME) && !given) args.unshift(ASYNC_CONTEXT_FRAME);
  return args;
}
