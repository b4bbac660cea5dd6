import { formatDuration } from "../../../lib/duration";
import type { Viewer } from "../../../lib/console";
import { Csrf } from "../../_console/ui";

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
}

/** The gateway editor: register (no client) or edit. */
export function ClientForm({ viewer, action, client, servedVos }: { viewer: Viewer; action: string; client?: ClientFormValues; servedVos: string[] }) {
  const scopes = new Set(client?.scopes ?? DEFAULT_SCOPES);
  return (
    <form method="post" action={action} className="stack">
      <Csrf viewer={viewer} />
      {client ? null : (
        <label>
          Client id <span className="hint">(optional; 3-64 of A-Z a-z 0-9 . _ -; generated if empty)</span>
          <input name="id" pattern="[A-Za-z0-9._\-]{3,64}" />
        </label>
      )}
      <label>Name<input name="name" required maxLength={100} defaultValue={client?.name} /></label>
      <label>Homepage<input name="homepage" type="url" defaultValue={client?.homepage ?? ""} placeholder="https://gateway.example.org" /></label>
      <label>Contact email<input name="contact" type="email" defaultValue={client?.contact ?? ""} /></label>
      <fieldset>
        <legend>Client type</legend>
        <label><input type="radio" name="type" value="confidential" defaultChecked={!client?.isPublic} /> Confidential (a server holding a secret)</label>
        <label><input type="radio" name="type" value="public" defaultChecked={client?.isPublic ?? false} /> Public (no secret; PKCE only)</label>
      </fieldset>
      <label>
        Redirect URIs <span className="hint">(one per line; https, or http on localhost; none only for a robot with WLCG tokens)</span>
        <textarea name="redirect_uris" rows={3} defaultValue={client?.redirectUris.join("\n")} />
      </label>
      <fieldset>
        <legend>Allowed scopes</legend>
        {SCOPES.map(([s, label]) => (
          <label key={s}><input type="checkbox" name="scopes" value={s} defaultChecked={scopes.has(s)} /> {label}</label>
        ))}
      </fieldset>
      <fieldset>
        <legend>VOMS attributes</legend>
        <label><input type="radio" name="vo_policy" value="any" defaultChecked={!client?.allowedVos} /> Any VO this portal serves</label>
        <label><input type="radio" name="vo_policy" value="listed" defaultChecked={!!client?.allowedVos} /> Only the VOs ticked below (none ticked: no VOMS attributes)</label>
        {servedVos.map((vo) => (
          <label key={vo}><input type="checkbox" name="allowed_vos" value={vo} defaultChecked={client?.allowedVos?.includes(vo) ?? false} /> {vo}</label>
        ))}
      </fieldset>
      <label>
        Maximum proxy lifetime <span className="hint">(e.g. 12h, 1d, 7d)</span>
        <input name="max_lifetime" required defaultValue={client ? formatDuration(client.maxProxyLifetime) : "1d"} size={8} />
      </label>
      <label>
        Reason for this change <span className="hint">(required; recorded in the audit log)</span>
        <input name="reason" required minLength={3} maxLength={500} />
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
