import { formatDuration } from "../../../lib/duration";
import type { FormFlash, Viewer } from "../../../lib/console";
import { Csrf, FieldError, FormError, kept } from "../../_console/ui";

const SCOPES = [
  ["openid", "openid: sign-in"],
  ["profile", "profile: name and certificate subject"],
  ["email", "email"],
  ["offline_access", "offline_access: refresh tokens"],
  ["proxy", "proxy: obtain proxies"],
  ["edu.uiuc.ncsa.myproxy.getcert", "edu.uiuc.ncsa.myproxy.getcert: MasterPortal-compatible proxies"],
  ["wlcg", "wlcg: WLCG profile tokens"],
  ["wlcg.groups", "wlcg.groups: groups in tokens (also wlcg.groups:/vo/group)"],
  ["compute.read", "compute.read: query jobs at compute elements"],
  ["compute.create", "compute.create: submit jobs"],
  ["compute.modify", "compute.modify: change jobs"],
  ["compute.cancel", "compute.cancel: remove jobs"],
] as const;
/** Scopes ticked for a new gateway (the WLCG ones are opted into). */
const DEFAULT_SCOPES = ["openid", "profile", "email", "offline_access", "proxy", "edu.uiuc.ncsa.myproxy.getcert"];

export interface ClientFormValues {
  id: string;
  name: string;
  homepage: string | null;
  contact: string | null;
  isPublic: boolean;
  redirectUris: string[];
  scopes: string[];
  allowedVos: string[] | null;
  maxProxyLifetime: number;
  compatProfile: string | null;
}

const FIELDS = ["id", "name", "homepage", "contact", "type", "redirect_uris", "scopes", "vo_policy", "allowed_vos", "max_lifetime", "compat_profile", "reason"] as const;

/**
 * The gateway editor: register (no client) or edit. After a refused submission (`flash`) it shows
 * what was typed, with the error next to its field.
 */
export function ClientForm({ viewer, action, client, servedVos, flash }: { viewer: Viewer; action: string; client?: ClientFormValues; servedVos: string[]; flash?: FormFlash | null }) {
  const typed = flash ? flash.values : null;
  const scopes = new Set(typed ? (typed.scopes ?? []) : (client?.scopes ?? DEFAULT_SCOPES));
  const isPublic = typed ? kept(flash, "type") === "public" : (client?.isPublic ?? false);
  const listed = typed ? kept(flash, "vo_policy") === "listed" : !!client?.allowedVos;
  const vos = new Set(typed ? (typed.allowed_vos ?? []) : (client?.allowedVos ?? []));
  const profile = typed ? (kept(flash, "compat_profile") ?? "none") : (client?.compatProfile ?? "none");
  const value = (name: string, fallback: string | undefined) => (typed ? (kept(flash, name) ?? "") : fallback);
  const described = (field: string) => (flash?.field === field ? { "aria-invalid": true as const, "aria-describedby": `${field}-error` } : {});
  return (
    <form method="post" action={action} className="stack">
      <Csrf viewer={viewer} />
      <FormError flash={flash} fields={FIELDS} />
      {client ? null : (
        <label>
          Client id <span className="hint">(optional; 3-64 of A-Z a-z 0-9 . _ -; generated if empty)</span>
          <input name="id" pattern="[A-Za-z0-9._\-]{3,64}" defaultValue={value("id", undefined)} {...described("id")} />
          <FieldError flash={flash} field="id" />
        </label>
      )}
      <label>Name<input name="name" required maxLength={100} defaultValue={value("name", client?.name)} {...described("name")} /><FieldError flash={flash} field="name" /></label>
      <label>Homepage<input name="homepage" type="url" defaultValue={value("homepage", client?.homepage ?? "")} placeholder="https://gateway.example.org" {...described("homepage")} /><FieldError flash={flash} field="homepage" /></label>
      <label>Contact email<input name="contact" type="email" defaultValue={value("contact", client?.contact ?? "")} {...described("contact")} /><FieldError flash={flash} field="contact" /></label>
      <fieldset>
        <legend>Client type</legend>
        <label><input type="radio" name="type" value="confidential" defaultChecked={!isPublic} /> Confidential (a server holding a secret)</label>
        <label><input type="radio" name="type" value="public" defaultChecked={isPublic} /> Public (no secret; PKCE only)</label>
        <FieldError flash={flash} field="type" />
      </fieldset>
      <label>
        Redirect URIs <span className="hint">(one per line; https, or http on localhost; none only for a robot with WLCG tokens)</span>
        <textarea name="redirect_uris" rows={3} defaultValue={value("redirect_uris", client?.redirectUris.join("\n"))} {...described("redirect_uris")} />
        <FieldError flash={flash} field="redirect_uris" />
      </label>
      <fieldset>
        <legend>Allowed scopes</legend>
        {SCOPES.map(([s, label]) => (
          <label key={s}><input type="checkbox" name="scopes" value={s} defaultChecked={scopes.has(s)} /> {label}</label>
        ))}
        <FieldError flash={flash} field="scopes" />
      </fieldset>
      <fieldset>
        <legend>VOMS attributes</legend>
        <label><input type="radio" name="vo_policy" value="any" defaultChecked={!listed} /> Any VO this portal serves</label>
        <label><input type="radio" name="vo_policy" value="listed" defaultChecked={listed} /> Only the VOs ticked below (none ticked: no VOMS attributes)</label>
        {servedVos.map((vo) => (
          <label key={vo}><input type="checkbox" name="allowed_vos" value={vo} defaultChecked={vos.has(vo)} /> {vo}</label>
        ))}
        <FieldError flash={flash} field="allowed_vos" />
        <FieldError flash={flash} field="vo_policy" />
      </fieldset>
      <label>
        Maximum proxy lifetime <span className="hint">(e.g. 12h, 1d, 7d)</span>
        <input name="max_lifetime" required defaultValue={value("max_lifetime", client ? formatDuration(client.maxProxyLifetime) : "1d")} size={8} {...described("max_lifetime")} />
        <FieldError flash={flash} field="max_lifetime" />
      </label>
      <fieldset>
        <legend>Compatibility profile</legend>
        <label><input type="radio" name="compat_profile" value="none" defaultChecked={profile === "none"} /> None: PKCE required, strict request parsing (the default)</label>
        <label>
          <input type="radio" name="compat_profile" value="masterportal" defaultChecked={profile === "masterportal"} /> MasterPortal / OA4MP (confidential clients
          only): PKCE optional, lenient scope separators, GET and query parameters at the token and revocation endpoints, auth_time in ID tokens
        </label>
        <FieldError flash={flash} field="compat_profile" />
      </fieldset>
      <label>
        Reason for this change <span className="hint">(required; recorded in the audit log)</span>
        <input name="reason" required minLength={3} maxLength={500} defaultValue={value("reason", undefined)} {...described("reason")} />
        <FieldError flash={flash} field="reason" />
      </label>
      <div className="actions"><button type="submit" className="primary">{client ? "Save changes" : "Register gateway"}</button></div>
    </form>
  );
}

export interface TokenPolicyValues {
  format: "opaque" | "wlcg";
  audiences?: string[];
  compute: boolean;
  computeGroups: string[];
  accessTokenLifetimeSeconds: number;
  introspection: boolean;
  deviceGrant: boolean;
  exchange?: { subjectClients: string[]; audiences?: string[]; scopes: string[] };
}

/** The token policy editor (tokens for compute elements): shown and changed with a reason, audited. */
export function TokenPolicyForm({ viewer, action, policy }: { viewer: Viewer; action: string; policy: TokenPolicyValues }) {
  return (
    <form method="post" action={action} className="stack">
      <Csrf viewer={viewer} />
      <fieldset>
        <legend>Access tokens</legend>
        <label><input type="radio" name="format" value="opaque" defaultChecked={policy.format === "opaque"} /> Opaque (for /getproxy; the default)</label>
        <label><input type="radio" name="format" value="wlcg" defaultChecked={policy.format === "wlcg"} /> WLCG Common JWT Profile (compute elements; confidential clients also get client credentials)</label>
      </fieldset>
      <label>
        Audiences <span className="hint">(one per line, e.g. ce.example.org:9619 or https://arc.example.org:443; empty: any)</span>
        <textarea name="audiences" rows={3} defaultValue={(policy.audiences ?? []).join("\n")} />
      </label>
      <fieldset>
        <legend>Compute scopes (compute.*)</legend>
        <label><input type="checkbox" name="compute" defaultChecked={policy.compute} /> Permitted for this client (robot tokens: client credentials)</label>
        <label>
          In user tokens only for members of <span className="hint">(WLCG groups, one per line, e.g. /dteam/pilot; empty: never in user tokens)</span>
          <textarea name="compute_groups" rows={2} defaultValue={policy.computeGroups.join("\n")} />
        </label>
      </fieldset>
      <label>
        Access token lifetime <span className="hint">(15m to 6h)</span>
        <input name="lifetime" required defaultValue={formatDuration(policy.accessTokenLifetimeSeconds)} />
      </label>
      <label><input type="checkbox" name="introspection" defaultChecked={policy.introspection} /> Resource server: may introspect other clients&apos; tokens</label>
      <label><input type="checkbox" name="device_grant" defaultChecked={policy.deviceGrant} /> Device flow (RFC 8628): terminal logins, e.g. oidc-agent</label>
      <fieldset>
        <legend>Token exchange (RFC 8693)</legend>
        <label><input type="checkbox" name="exchange" defaultChecked={!!policy.exchange} /> Allowed</label>
        <label>Subject tokens of clients <span className="hint">(ids, one per line; its own always)</span><textarea name="exchange_clients" rows={2} defaultValue={(policy.exchange?.subjectClients ?? []).join("\n")} /></label>
        <label>For audiences <span className="hint">(one per line; empty: the audiences above)</span><textarea name="exchange_audiences" rows={2} defaultValue={(policy.exchange?.audiences ?? []).join("\n")} /></label>
        <label>With scopes <span className="hint">(one per line)</span><textarea name="exchange_scopes" rows={2} defaultValue={(policy.exchange?.scopes ?? []).join("\n")} /></label>
      </fieldset>
      <label>Reason<input name="reason" required minLength={3} maxLength={500} size={40} /></label>
      <button type="submit" className="primary">Save token policy</button>
    </form>
  );
}
