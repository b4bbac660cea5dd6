/**
 * WLCG Common JWT Profile access tokens (v1.0) for clients whose token policy asks for them
 * (scopePolicy.ts): what a compute element's token carries and how the requests DIRAC sends map
 * onto oidc-provider's resource indicators.
 *
 * - `aud`: from DIRAC's `audience` (authlib sends it; `host:port` for HTCondor-CE, `https://host:port`
 *   for ARC REST) or RFC 8707 `resource`; default the profile's "any" audience. The provider's
 *   resource indicator for every WLCG token is that "any" URI (so a refresh token bound at login
 *   can be used for any permitted audience); the audience itself comes from the request.
 * - `wlcg.groups`: from the same membership mapping the VOMS AA uses (lib/voms/membership.ts), so a
 *   token and a proxy of the same person agree. VOMS FQANs map to WLCG group paths: the
 *   `/Role=NULL` and `/Capability=NULL` parts of the long form are dropped, and a role
 *   `/vo/group/Role=r` is the optional group `/vo/group/r`, put in a token only when asked for by
 *   a parametric scope (`wlcg.groups:/vo/group/r`, or Check-in's `eduperson_entitlement?value=urn…`).
 * - `wlcg.ver` "1.0", `nbf` backdated 60 s, `kid` in the header (oidc-provider), RS256.
 */
import querystring from "node:querystring";
import { membershipsFromClaims, type VoMembership } from "../voms/membership";
import { WLCG_ANY_AUDIENCE } from "./scopePolicy";

/** A VOMS FQAN (short or long form) as a WLCG group path, and whether it is a role (an optional group). */
export function fqanToWlcgGroup(fqan: string): { path: string; role: boolean } | null {
  const parts = fqan.split("/").filter(Boolean);
  const groups: string[] = [];
  let role: string | null = null;
  for (const p of parts) {
    const m = /^(Role|Capability)=(.*)$/i.exec(p);
    if (!m) {
      if (role !== null) return null; // a group after a role is not an FQAN
      groups.push(p);
    } else if (m[1]!.toLowerCase() === "role" && m[2] !== "NULL") role = m[2]!;
  }
  if (groups.length === 0) return null;
  return role ? { path: `/${[...groups, role].join("/")}`, role: true } : { path: `/${groups.join("/")}`, role: false };
}

/** The person's WLCG groups: `groups` are the default ones (every group), `optional` the roles. */
export function wlcgGroupsOf(memberships: readonly VoMembership[]): { groups: string[]; optional: string[] } {
  const groups: string[] = [];
  const optional: string[] = [];
  for (const m of memberships) {
    for (const f of m.fqans) {
      const g = fqanToWlcgGroup(f);
      if (!g) continue;
      const list = g.role ? optional : groups;
      if (!list.includes(g.path)) list.push(g.path);
    }
  }
  return { groups, optional };
}

/** The WLCG group paths a person holds, from their verified claims and the operator's static FQANs. */
export function wlcgGroupsFromClaims(claims: Record<string, unknown>, staticFqans: readonly string[] = []) {
  return wlcgGroupsOf(membershipsFromClaims(claims, { staticFqans }));
}

const PARAMETRIC_GROUP = /^wlcg\.groups:(.*)$/;
const ENTITLEMENT = /^eduperson_entitlement(?:\?value=|:)(.+)$/;

/**
 * A requested scope that names a group: `wlcg.groups:/vo/group` (IAM, WLCG profile) or
 * `eduperson_entitlement?value=urn:mace:egi.eu:group:vo:role=r#aai.egi.eu` (Check-in, as DIRAC
 * sends it). Returns the WLCG group path asked for, null for other scopes, or "invalid".
 */
export function requestedGroupOf(scope: string): string | null | "invalid" {
  const p = PARAMETRIC_GROUP.exec(scope);
  if (p) {
    const g = p[1]!.startsWith("/") ? fqanToWlcgGroup(p[1]!) : null;
    return g ? g.path : "invalid";
  }
  const e = ENTITLEMENT.exec(scope);
  if (e) {
    let urn: string;
    try {
      urn = decodeURIComponent(e[1]!);
    } catch {
      return "invalid";
    }
    const m = membershipsFromClaims({ eduperson_entitlement: [urn] })[0];
    // the most specific FQAN the entitlement names: its role if any, else its deepest group
    const last = m?.fqans[m.fqans.length - 1];
    const g = last ? fqanToWlcgGroup(last) : null;
    return g ? g.path : "invalid";
  }
  return null;
}

/** What a token request asked for beyond what oidc-provider's parameters carry. */
export interface WlcgRequest {
  /** DIRAC's `audience` parameter (one or more, space-separated). */
  audience: string[] | null;
  /** Groups named by parametric scopes, in the order asked. */
  groups: string[];
  /** Plain `wlcg.groups` was asked for (every default group). */
  plainGroups: boolean;
}

const requests = new WeakMap<object, WlcgRequest>();
export const wlcgRequestOf = (ctx: object): WlcgRequest | undefined => requests.get(ctx);

/**
 * Rewrite a token request body before oidc-provider reads it: remember `audience` and the
 * parametric group scopes (oidc-provider knows neither), and put plain `wlcg.groups` in the scope
 * instead of each parametric one, so a refresh token granted `wlcg.groups` covers a request for
 * one of the groups (downscoping) and the provider's own scope checks still apply. Returns the
 * body to hand on, or null when nothing needed changing.
 */
export function rewriteTokenRequest(ctx: object, body: string): { body: string } | { error: string } | null {
  const params = querystring.parse(body);
  const audience = typeof params.audience === "string" ? params.audience : Array.isArray(params.audience) ? params.audience.join(" ") : null;
  const scope = typeof params.scope === "string" ? params.scope : null;
  const groups: string[] = [];
  let scopes = scope?.split(" ").filter(Boolean) ?? [];
  const plainGroups = scopes.includes("wlcg.groups");
  let changed = audience !== null;
  if (scope) {
    const out: string[] = [];
    for (const s of scopes) {
      const g = requestedGroupOf(s);
      if (g === "invalid") return { error: `the scope ${s} does not name a group` };
      if (g === null) out.push(s);
      else {
        changed = true;
        if (!groups.includes(g)) groups.push(g);
        if (!out.includes("wlcg.groups")) out.push("wlcg.groups");
      }
    }
    scopes = out;
  }
  if (!changed) return null;
  requests.set(ctx, { audience: audience ? audience.split(" ").filter(Boolean) : null, groups, plainGroups });
  delete params.audience;
  if (scope) params.scope = scopes.join(" ");
  return { body: querystring.stringify(params) };
}

/** The groups a user token carries: those asked for by name first (refused if not held), then with plain `wlcg.groups` every default group. */
export function tokenGroups(held: { groups: string[]; optional: string[] }, asked: readonly string[], plain: boolean): { ok: true; groups: string[] } | { ok: false; group: string } {
  const out: string[] = [];
  for (const g of asked) {
    if (!held.groups.includes(g) && !held.optional.includes(g)) return { ok: false, group: g };
    if (!out.includes(g)) out.push(g);
  }
  if (plain) for (const g of held.groups) if (!out.includes(g)) out.push(g);
  return { ok: true, groups: out };
}

export { WLCG_ANY_AUDIENCE };
