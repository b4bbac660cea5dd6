/**
 * VO membership from federated claims, as FQANs (VOMS "fully qualified
 * attribute names"). Pure: no I/O.
 *
 * FQANs are always written in the VOMS long form, as VOMS and IAM AAs put
 * them into ACs and `voms-proxy-info -fqan` prints them:
 *   /vo[/group...]/Role=<role>/Capability=NULL   (a group alone: Role=NULL)
 * XRootD's VOMS extractor (default grpopt=2) denies an AC that mixes the
 * short form (/vo) with role-qualified FQANs; the long form works everywhere.
 * Inputs (claims, the static table, requests) may use either form.
 *
 * Sources, in this order:
 * - EGI Check-in `eduperson_entitlement` URNs (AARC-G002):
 *   urn:mace:egi.eu:group:<vo>[:<subgroup>...][:role=<role>]#<authority>
 *   role=member (or no role) is plain group membership: /vo/sub;
 *   any other role gives /vo/sub/Role=<role> as well as the group itself.
 * - `wlcg.groups` and `groups` claims (WLCG common JWT profile, IAM):
 *   "/vo/sub" or "vo" paths; "/vo/Role=x" paths are kept as roles.
 * - a static per-person table kept by the operator (the same FQAN strings).
 *
 * Result per VO, in the long form: groups first (shortest path first, the VO
 * root always present once any membership is known), then roles; no duplicates.
 */
export interface VoMembership {
  vo: string;
  /** e.g. ["/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL", "/biomed/Role=pilot/Capability=NULL"] */
  fqans: string[];
}

/** Entitlement namespaces accepted as VO groups (Check-in's, and others the operator may add). */
export const DEFAULT_ENTITLEMENT_PREFIXES = ["urn:mace:egi.eu:group:"];

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

interface Attribute {
  vo: string;
  groups: string[];
  role: string | null;
}

function fromEntitlement(urn: string, prefixes: readonly string[]): Attribute | null {
  const prefix = prefixes.find((p) => urn.toLowerCase().startsWith(p.toLowerCase()));
  if (!prefix) return null;
  const body = urn.slice(prefix.length).split("#")[0]!;
  const parts = body.split(":").map((p) => decodeURIComponent(p));
  let role: string | null = null;
  const last = parts[parts.length - 1];
  if (last?.toLowerCase().startsWith("role=")) {
    role = last.slice(5);
    parts.pop();
  }
  if (parts.length === 0 || !parts.every((p) => NAME.test(p))) return null;
  if (role !== null && !NAME.test(role)) return null;
  return { vo: parts[0]!, groups: parts.slice(1), role: role && role.toLowerCase() !== "member" ? role : null };
}

function fromPath(path: string): Attribute | null {
  const parts = path.replace(/^\//, "").split("/").filter(Boolean);
  let role: string | null = null;
  const roleAt = parts.findIndex((p) => /^Role=/i.test(p));
  if (roleAt >= 0) {
    role = parts[roleAt]!.slice(5);
    if (role === "NULL") role = null;
    parts.splice(roleAt);
  }
  const cleaned = parts.filter((p) => !/^Capability=/i.test(p));
  if (cleaned.length === 0 || !cleaned.every((p) => NAME.test(p))) return null;
  if (role !== null && !NAME.test(role)) return null;
  return { vo: cleaned[0]!, groups: cleaned.slice(1), role };
}

/** The VOMS long form of a group (and role): /vo/group/Role=<role or NULL>/Capability=NULL. */
export const longFqan = (group: string, role: string | null = null) => `${group}/Role=${role ?? "NULL"}/Capability=NULL`;

/** An FQAN in either form, split into its group path and role (null for Role=NULL); null if it is not one. */
export function splitFqan(fqan: string): { vo: string; group: string; role: string | null } | null {
  if (!fqan.startsWith("/")) return null;
  const a = fromPath(fqan);
  return a && { vo: a.vo, group: `/${[a.vo, ...a.groups].join("/")}`, role: a.role };
}

/** Either form in, the long form out (null if it is not an FQAN). */
export function toLongFqan(fqan: string): string | null {
  const f = splitFqan(fqan);
  return f && longFqan(f.group, f.role);
}

const stringsOf = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : typeof v === "string" ? [v] : []);

/** All VO memberships the claims (and the static table) establish. */
export function membershipsFromClaims(
  claims: Record<string, unknown>,
  opts: { entitlementPrefixes?: readonly string[]; staticFqans?: readonly string[] } = {},
): VoMembership[] {
  const prefixes = opts.entitlementPrefixes ?? DEFAULT_ENTITLEMENT_PREFIXES;
  const attrs: Attribute[] = [];
  for (const e of stringsOf(claims.eduperson_entitlement)) {
    const a = fromEntitlement(e, prefixes);
    if (a) attrs.push(a);
  }
  for (const g of [...stringsOf(claims["wlcg.groups"]), ...stringsOf(claims.groups), ...(opts.staticFqans ?? [])]) {
    const a = fromPath(g);
    if (a) attrs.push(a);
  }
  const byVo = new Map<string, { groups: Set<string>; roles: Map<string, [group: string, role: string]> }>();
  for (const a of attrs) {
    const entry = byVo.get(a.vo) ?? { groups: new Set<string>(), roles: new Map<string, [string, string]>() };
    byVo.set(a.vo, entry);
    const group = `/${[a.vo, ...a.groups].join("/")}`;
    entry.groups.add(`/${a.vo}`);
    entry.groups.add(group);
    if (a.role) entry.roles.set(`${group}/Role=${a.role}`, [group, a.role]);
  }
  const depth = (f: string) => f.split("/").length;
  return [...byVo.entries()].map(([vo, e]) => ({
    vo,
    fqans: [
      ...[...e.groups].sort((x, y) => depth(x) - depth(y) || x.localeCompare(y)).map((g) => longFqan(g)),
      ...[...e.roles.keys()].sort().map((k) => longFqan(...e.roles.get(k)!)),
    ],
  }));
}

/**
 * voms-proxy-init syntax: "vo" or "vo:/vo/group/Role=r" (RFC-less, but every
 * grid user types it), the FQAN in either form. The FQAN comes back in the
 * long form, as the AC will carry it.
 */
export function parseVomsRequest(text: string): { vo: string; fqan: string | null } {
  const i = text.indexOf(":");
  const vo = i < 0 ? text : text.slice(0, i);
  const fqan = i < 0 ? null : text.slice(i + 1);
  if (!NAME.test(vo)) throw new Error(`"${vo}" is not a VO name`);
  if (fqan === null) return { vo, fqan: null };
  const long = new RegExp(`^/${vo.replace(/[.]/g, "\\.")}(/[A-Za-z0-9._-]+)*(/Role=[A-Za-z0-9._-]+)?(/Capability=NULL)?$`).test(fqan) ? toLongFqan(fqan) : null;
  if (long === null) throw new Error(`"${fqan}" is not an FQAN of VO ${vo} (expected /${vo}[/group][/Role=role])`);
  return { vo, fqan: long };
}

/** A role FQAN (Role=<something other than NULL>), in the long form. */
export const isRoleFqan = (fqan: string) => splitFqan(fqan)?.role != null;

/**
 * The FQANs to put in the AC for a request, as VOMS and IAM choose them: a
 * role is a privilege the person asks for explicitly, never a default.
 * - "vo": all of the person's groups in the VO, no roles;
 * - "vo:/vo/group/Role=r": that role first, then all of the groups;
 * - "vo:/vo/group": that group first, then the other groups.
 * Refuses a VO, group or role the person does not hold.
 */
export function selectFqans(membership: VoMembership | undefined, vo: string, requested: string | null): { ok: true; fqans: string[] } | { ok: false; reason: string } {
  if (!membership || membership.fqans.length === 0) return { ok: false, reason: `you are not a member of VO ${vo}` };
  const groups = membership.fqans.filter((f) => !isRoleFqan(f));
  if (requested === null) return { ok: true, fqans: groups };
  requested = toLongFqan(requested) ?? requested;
  if (!membership.fqans.includes(requested)) {
    // Refusals name the group or role as people write it: /vo/group, /vo/group/Role=r.
    const f = splitFqan(requested);
    const what = f?.role ? `the role ${f.group}/Role=${f.role}` : `the group ${f?.group ?? requested}`;
    return { ok: false, reason: `you do not hold ${what} in VO ${vo}` };
  }
  return { ok: true, fqans: [requested, ...groups.filter((f) => f !== requested)] };
}
