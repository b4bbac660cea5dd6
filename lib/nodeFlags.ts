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
 * A ceiling on V8's old space (MB). Under sustained load V8 otherwise grows a worker's heap in steps
 * to several hundred MB of garbage before it settles (bench/throughput.ts memory run: +50 % over
 * the second 50,000 of 100,000 issuances for one worker); with 256 MB the resident size stayed
 * within 5 % at the same rate. A cluster worker can be restarted by the primary; the single process
 * of CERTBRIDGE_WORKERS=1 keeps V8's own sizing.
 */
const HEAP_FLAG = /^--max[-_]old[-_]space[-_]size(=|$)/;

/** Whether these Node arguments (execArgv, or NODE_OPTIONS split on spaces) set the old-space ceiling. */
export function setsHeapCeiling(args: readonly string[]): boolean {
  return args.some((a) => HEAP_FLAG.test(a));
}

/**
 * The arguments a serving process is started with: `execArgv` plus the flags above where this Node
 * accepts them and they are not given (or refused with `--no-…`) already; `heapMb` > 0 adds the
 * old-space ceiling unless `execArgv` sets one.
 */
export function servingExecArgv(
  execArgv: readonly string[],
  accepted: ReadonlySet<string> = process.allowedNodeEnvironmentFlags,
  opts: { heapMb?: number } = {},
): string[] {
  const args = [...execArgv];
  if (opts.heapMb && !setsHeapCeiling(args)) args.unshift(`--max-old-space-size=${opts.heapMb}`);
  // Node 22 spells the refusal --no-experimental-…, Node 24 --no-async-context-frame.
  const given = [ASYNC_CONTEXT_FRAME, "--no-experimental-async-context-frame", "--no-async-context-frame"].some((f) => args.includes(f));
  if (accepted.has(ASYNC_CONTEXT_FRAME) && !given) args.unshift(ASYNC_CONTEXT_FRAME);
  return args;
}
