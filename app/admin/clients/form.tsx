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

const FIELDS = ["id", "name", "homepage", "contact", "type", "redirect_uris", "scopes", "vo_policy", "allowed_vos", "max_lifetime", "reason"] as const;

/**
 * The gateway editor: register (no client) or edit. After a refused submission (`flash`) it shows
 * what was typed, with the error next to its field.
 */
export function ClientForm({ viewer, action, client, servedVos, flash }: { viewer: Viewer; action: string; client?: ClientFormValues; servedVos: string[]; flash?: FormFlash | null }) {
  const typed = flash ? flash.values : null;
  const scopes = new Set(typed ? (typed.scopes ?? []) : (client?.scopes ?? SCOPES.map(([s]) => s)));
  const isPublic = typed ? kept(flash, "type") === "public" : (client?.isPublic ?? false);
  const listed = typed ? kept(flash, "vo_policy") === "listed" : !!client?.allowedVos;
  const vos = new Set(typed ? (typed.allowed_vos ?? []) : (client?.allowedVos ?? []));
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
        Redirect URIs <span className="hint">(one per line; https, or http on localhost)</span>
        <textarea name="redirect_uris" rows={3} required defaultValue={value("redirect_uris", client?.redirectUris.join("\n"))} {...described("redirect_uris")} />
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
      <label>
        Reason for this change <span className="hint">(required; recorded in the audit log)</span>
        <input name="reason" required minLength={3} maxLength={500} defaultValue={value("reason", undefined)} {...described("reason")} />
        <FieldError flash={flash} field="reason" />
      </label>
      <div className="actions"><button type="submit" className="primary">{client ? "Save changes" : "Register gateway"}</button></div>
    </form>
  );
}
