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
] as const;

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
  const scopes = new Set(client?.scopes ?? SCOPES.map(([s]) => s));
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
        Redirect URIs <span className="hint">(one per line; https, or http on localhost)</span>
        <textarea name="redirect_uris" rows={3} required defaultValue={client?.redirectUris.join("\n")} />
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
