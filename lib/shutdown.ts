/**
 * Graceful shutdown (issue 12, point 7). On SIGTERM or SIGINT:
 *   1. readiness fails at once (lib/health.ts), and the HTTP listener stops accepting;
 *      idle keep-alive connections are closed, and every response still to be written says
 *      `Connection: close`, so clients reconnect elsewhere;
 *   2. requests in flight finish, for at most the grace period (CERTBRIDGE_SHUTDOWN_GRACE);
 *      connections still open then are closed;
 *   3. the SSH and MyProxy listeners stop (their sessions get what is left of the grace period),
 *      then the database is closed and the process exits 0.
 * Nothing acknowledged is lost: an issuance answers only after its certificate and audit row
 * committed, and the database closes after the last request. A second signal exits at once (1),
 * except in a cluster worker.
 */
import type http from "node:http";

export interface ShutdownPlan {
  server: http.Server;
  graceMs: number;
  /** Called first (readiness fails). */
  onDrain: () => void;
  /** Other listeners (SSH, MyProxy), closed while HTTP drains. */
  listeners: Array<() => Promise<void>>;
  /** Called last (timers, the database). */
  close: () => Promise<void>;
  log: (m: string) => void;
  /**
   * A second signal exits at once (an impatient operator). Not in a cluster worker: Ctrl-C reaches
   * it directly and through the primary (SIGINT, then SIGTERM), which is one request to stop.
   */
  repeatForcesExit?: boolean;
  exit?: (code: number) => void;
}

/** Count the requests in flight on `server` (register before the first request). */
export function trackRequests(server: http.Server): { inFlight: () => number; drain: () => void } {
  const open = new Set<http.ServerResponse>();
  let draining = false;
  server.on("request", (_req: http.IncomingMessage, res: http.ServerResponse) => {
    open.add(res);
    if (draining) res.shouldKeepAlive = false;
    res.once("close", () => open.delete(res));
  });
  return {
    inFlight: () => open.size,
    // Responses not yet started say `Connection: close` and end their connection.
    drain: () => {
      draining = true;
      for (const res of open) if (!res.headersSent) res.shouldKeepAlive = false;
    },
  };
}

export function installGracefulShutdown(plan: ShutdownPlan, tracker: ReturnType<typeof trackRequests>): () => Promise<void> {
  const exit = plan.exit ?? ((code: number) => process.exit(code));
  let started = false;
  const shutdown = async (signal: string) => {
    if (started) {
      if (plan.repeatForcesExit === false) return;
      plan.log(`${signal} again: exiting now`);
      exit(1);
      return;
    }
    started = true;
    const begun = Date.now();
    const deadline = begun + plan.graceMs;
    plan.log(`${signal}: stopping (${tracker.inFlight()} request${tracker.inFlight() === 1 ? "" : "s"} in flight, up to ${Math.round(plan.graceMs / 1000)} s to finish)`);
    plan.onDrain();
    tracker.drain();
    const httpClosed = new Promise<void>((resolve) => plan.server.close(() => resolve()));
    const others = Promise.allSettled(plan.listeners.map((close) => close()));
    // Keep-alive connections that go idle after their last response are closed as they do.
    const idle = setInterval(() => plan.server.closeIdleConnections(), 50);
    plan.server.closeIdleConnections();
    const graceOver = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now())).unref());
    const outcome = await Promise.race([Promise.all([httpClosed, others]).then(() => "done" as const), graceOver]);
    clearInterval(idle);
    if (outcome === "timeout") {
      plan.log(`grace period over: closing ${tracker.inFlight()} request${tracker.inFlight() === 1 ? "" : "s"} still in flight`);
      plan.server.closeAllConnections();
    }
    try {
      await plan.close();
    } catch (e) {
      plan.log(`while closing: ${(e as Error).message}`);
    }
    plan.log(`stopped in ${Date.now() - begun} ms`);
    exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  return () => shutdown("shutdown");
}
