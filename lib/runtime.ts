/**
 * The one named place where Next's separately bundled pages and route
 * handlers meet the objects the server entry built (cf. smallstep ca/ca.go).
 * Next code imports only this module and types; state lives on globalThis
 * because Next loads its own copy of every module.
 */
import type { Portal } from "./portal";

const KEY = Symbol.for("certbridge.portal");
type Slot = { [KEY]?: Portal };

export function publishPortal(portal: Portal): void {
  (globalThis as Slot)[KEY] = portal;
}

export function portal(): Portal {
  const p = (globalThis as Slot)[KEY];
  if (!p) throw new Error("the portal is not running: start it with `npm start` (server.ts), not `next start`");
  return p;
}
