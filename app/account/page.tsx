import { portal } from "../../lib/runtime";
import { formatDuration } from "../../lib/duration";
import { isRoleFqan, longFqan } from "../../lib/voms/membership";
import { CertificateTable, Console, Csrf, FieldError, Flash, PostButton, Time, formFlash, kept, paramsOf, requireViewer, type SearchParams } from "../_console/ui";

export const metadata = { title: "Your account · Certbridge" };

const LIFETIMES = [3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400];

export default async function Account({ searchParams }: { searchParams: SearchParams }) {
  const viewer = await requireViewer("/account");
  const params = await paramsOf(searchParams);
  const a = await portal().console.account.account(viewer);
  const lifetimes = LIFETIMES.filter((s) => s <= a.proxyLifetimes.max);
  // a refused form comes back with what was typed and the error next to its field
  const flash = await formFlash("/account");
  const sshFlash = flash?.values.public_key !== undefined ? flash : null;
  const proxyFlash = flash?.values.lifetime !== undefined ? flash : null;
  const otherFlash = flash && !sshFlash && !proxyFlash ? flash : null;
  return (
    <Console viewer={viewer} current="/account">
      <h1>Your account</h1>
      <Flash params={params} />
      {otherFlash ? <p className="error" role="alert">{otherFlash.error}</p> : null}
      <section aria-labelledby="identity">
        <h2 id="identity">Your identity</h2>
        <div className="table-wrap">
          <table className="data kv">
            <tbody>
              <tr><th scope="row">Name</th><td>{a.identity.displayName}</td></tr>
              {a.identity.email ? <tr><th scope="row">Email</th><td>{a.identity.email}</td></tr> : null}
              <tr><th scope="row">Signed in through</th><td>{a.idp} <span className="hint">({a.identity.issuer})</span></td></tr>
              <tr><th scope="row">Certificate subject</th><td className="dn">{a.identity.subject}</td></tr>
              <tr><th scope="row">Account name</th><td><code>{a.identity.id}</code> <span className="hint">(the user name for myproxy-logon -l, as is your certificate subject)</span></td></tr>
              <tr><th scope="row">First seen</th><td><Time at={a.identity.createdAt} /></td></tr>
            </tbody>
          </table>
        </div>
        <h3>Virtual organisations</h3>
        {a.memberships.length ? (
          <ul>
            {a.memberships.map((m) => (
              <li key={m.vo}>
                <strong>{m.vo}</strong>
                {m.served ? "" : " (not served by this portal)"}: {m.fqans.map((f) => <code key={f}>{f} </code>)}
              </li>
            ))}
          </ul>
        ) : (
          <p className="muted">Your identity provider asserted no VO memberships.</p>
        )}
      </section>

      <section aria-labelledby="consents">
        <h2 id="consents">Gateways you allowed</h2>
        {a.consents.length ? (
          <div className="table-wrap">
            <table className="data responsive">
              <thead><tr><th scope="col">Gateway</th><th scope="col">Access</th><th scope="col">Since</th><th scope="col">Until</th><th scope="col"><span className="hint">Action</span></th></tr></thead>
              <tbody>
                {a.consents.map((c) => (
                  <tr key={c.grantId}>
                    <td data-label="Gateway">{c.clientName} <span className="hint">({c.clientId})</span></td>
                    <td data-label="Access">{c.scopes.join(", ")}{c.refreshTokens ? `; ${c.refreshTokens} long-lived token(s)` : ""}</td>
                    <td data-label="Since"><Time at={c.grantedAt} /></td>
                    <td data-label="Until"><Time at={c.refreshUntil ?? c.expiresAt} /></td>
                    <td data-label="Action">
                      <a className="button danger" href={`/account/consents/${encodeURIComponent(c.grantId)}/revoke`} aria-label={`Revoke consent for ${c.clientName}…`}>Revoke…</a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p className="muted">No gateway currently holds your consent.</p>
        )}
      </section>

      <section aria-labelledby="certs">
        <h2 id="certs">Your certificates</h2>
        {a.certificates.rows.length ? (
          <CertificateTable rows={a.certificates.rows} admin={false} />
        ) : (
          <p className="muted">Nothing has been issued in your name yet.</p>
        )}
      </section>

      <section aria-labelledby="ssh">
        <h2 id="ssh">SSH keys</h2>
        {a.ssh ? (
          <p>
            Get a proxy from a terminal with one of your keys (saved with mode 0600, as grid tools require):{" "}
            <code>{a.ssh.command}</code>, optionally with <code>voms=biomed lifetime=12h</code> after the host.
            {a.ssh.fingerprint ? <> The server&apos;s host key fingerprint is <code>{a.ssh.fingerprint}</code>.</> : null}
          </p>
        ) : (
          <p className="muted">SSH retrieval is switched off on this portal.</p>
        )}
        {a.sshKeys.length ? (
          <div className="table-wrap">
            <table className="data responsive">
              <thead><tr><th scope="col">Label</th><th scope="col">Type</th><th scope="col">Fingerprint</th><th scope="col">Added</th><th scope="col">Last used</th><th scope="col"><span className="hint">Action</span></th></tr></thead>
              <tbody>
                {a.sshKeys.map((k) => (
                  <tr key={k.id}>
                    <td data-label="Label">{k.label}</td>
                    <td data-label="Type">{k.algorithm}</td>
                    <td data-label="Fingerprint"><code>{k.fingerprint}</code></td>
                    <td data-label="Added"><Time at={k.createdAt} /></td>
                    <td data-label="Last used"><Time at={k.lastUsedAt} /></td>
                    <td data-label="Action">
                      <PostButton viewer={viewer} action={`/account/ssh-keys/${encodeURIComponent(k.id)}`} label="Delete" ariaLabel={`Delete SSH key ${k.label}`} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p className="muted">No SSH keys yet.</p>
        )}
        <form method="post" action="/account/ssh-keys" className="stack">
          <Csrf viewer={viewer} />
          <label>
            Public key <span className="hint">(the .pub file: ssh-ed25519, ecdsa-sha2-nistp256/384/521, or ssh-rsa of at least 2048 bits)</span>
            <textarea name="public_key" rows={3} required placeholder="ssh-ed25519 AAAAC3Nza… you@laptop" spellCheck={false} defaultValue={kept(sshFlash, "public_key")} {...(sshFlash?.field === "public_key" ? { "aria-invalid": true, "aria-describedby": "public_key-error" } : {})} />
            <FieldError flash={sshFlash} field="public_key" />
          </label>
          <label>
            Label <span className="hint">(optional; defaults to the key&apos;s comment)</span>
            <input name="label" maxLength={100} defaultValue={kept(sshFlash, "label")} />
            <FieldError flash={sshFlash} field="label" />
          </label>
          <div className="actions"><button type="submit">Add SSH key</button></div>
        </form>
      </section>

      {a.myproxy ? (
        <section aria-labelledby="myproxy">
          <h2 id="myproxy">MyProxy retrieval codes</h2>
          <p>
            For <code>myproxy-logon</code> on a machine without a gateway: a code works once, for {a.myproxy.codeMinutes} minutes, as the passphrase with your DN as the user name
            (<code>myproxy-logon -s {a.myproxy.host} -p {a.myproxy.port} -l &quot;{a.identity.subject}&quot;</code>).
            {a.myproxyCodes.length ? ` You have ${a.myproxyCodes.length} unused code${a.myproxyCodes.length > 1 ? "s" : ""}.` : null}
          </p>
          <form method="post" action="/account/myproxy-code" className="stack">
            <Csrf viewer={viewer} />
            <div className="actions"><button type="submit">Make a retrieval code</button></div>
          </form>
        </section>
      ) : null}

      {a.myproxy ? (
        <section aria-labelledby="myproxy-renewal">
          <h2 id="myproxy-renewal">MyProxy renewal by VO boxes</h2>
          <p>
            A VO box registered by the portal&apos;s administrators can keep your proxy alive (<code>myproxy-logon -a</code> with its host
            credential) for one VO, and role if you choose one, until the day you set. Nothing of yours is stored but this consent; revoke it at any time.
          </p>
          {a.renewalConsents.length ? (
            <div className="table-wrap">
              <table className="data responsive">
                <thead><tr><th scope="col">VO box</th><th scope="col">For</th><th scope="col">Since</th><th scope="col">Until</th><th scope="col"><span className="hint">Action</span></th></tr></thead>
                <tbody>
                  {a.renewalConsents.map((c) => (
                    <tr key={c.id}>
                      <td data-label="VO box">{c.renewer.label} <span className="hint dn">({c.renewer.subject})</span></td>
                      <td data-label="For"><code>{c.role ?? c.vo}</code>{c.role ? null : " (groups, no role)"}</td>
                      <td data-label="Since"><Time at={c.createdAt} /></td>
                      <td data-label="Until"><Time at={c.expiresAt} /></td>
                      <td data-label="Action">
                        <PostButton viewer={viewer} action={`/account/myproxy-renewals/${encodeURIComponent(c.id)}`} label="Revoke" ariaLabel={`Revoke renewal by ${c.renewer.label} for ${c.role ?? c.vo}`} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <p className="muted">No VO box may renew your proxy.</p>
          )}
          {a.renewers.length ? (
            <form method="post" action="/account/myproxy-renewals" className="stack">
              <Csrf viewer={viewer} />
              <label>
                VO box
                <select name="renewer" required defaultValue={kept(otherFlash, "renewer") ?? ""}>
                  <option value="" disabled>choose…</option>
                  {a.renewers.map((r) => <option key={r.id} value={r.id}>{r.label} ({r.subject})</option>)}
                </select>
              </label>
              <label>
                For
                <select name="vo" required defaultValue={kept(otherFlash, "vo") ?? ""}>
                  <option value="" disabled>choose…</option>
                  {a.memberships.filter((m) => m.served).flatMap((m) => [
                    <option key={m.vo} value={m.vo}>{m.vo} (your groups, no role)</option>,
                    ...m.fqans.filter(isRoleFqan).map((f) => <option key={f} value={`${m.vo}:${f}`}>{f} (role, with your groups)</option>),
                  ])}
                </select>
              </label>
              <label>
                Until <span className="hint">(the end of that day, UTC; at most {a.maxRenewalConsentDays} days ahead)</span>
                <input type="date" name="until" required defaultValue={kept(otherFlash, "until")} />
              </label>
              <div className="actions"><button type="submit">Allow renewal</button></div>
            </form>
          ) : (
            <p className="muted">No VO box is registered on this portal.</p>
          )}
        </section>
      ) : null}

      <section aria-labelledby="proxy">
        <h2 id="proxy">Get a proxy now</h2>
        <p>For when you have no gateway: the portal makes a key and a proxy certificate and your browser downloads both in one file.</p>
        <p className="warning">
          <strong>The file contains a private key.</strong> Anyone holding it can act as you on the grid until it expires. Keep it
          readable only by you (<code>chmod 600</code>), never email or share it, and delete it when done. Command-line users can
          get proxies without a browser: see the portal&apos;s documentation.
        </p>
        <form method="post" action="/account/proxy" className="stack">
          <Csrf viewer={viewer} />
          <label>
            Lifetime
            <select name="lifetime" defaultValue={kept(proxyFlash, "lifetime") ?? String(Math.min(a.proxyLifetimes.default, a.proxyLifetimes.max))}>
              {[...new Set([...lifetimes, a.proxyLifetimes.default])].sort((x, y) => x - y).map((s) => (
                <option key={s} value={String(s)}>{formatDuration(s)}</option>
              ))}
            </select>
            <FieldError flash={proxyFlash} field="lifetime" />
          </label>
          <label>
            VOMS attributes
            <select name="vo" defaultValue={kept(proxyFlash, "vo") ?? ""}>
              <option value="">none (plain proxy)</option>
              {a.memberships.filter((m) => m.served).flatMap((m) => [
                <option key={m.vo} value={m.vo}>{m.vo} (your groups, no role)</option>,
                // a role only when asked for, as with voms-proxy-init --voms vo:/vo/Role=r
                ...m.fqans.filter(isRoleFqan).map((f) => <option key={f} value={`${m.vo}:${f}`}>{f} (role, with your groups)</option>),
                ...m.fqans.filter((f) => !isRoleFqan(f) && f !== longFqan(`/${m.vo}`)).map((f) => <option key={f} value={`${m.vo}:${f}`}>{f} first</option>),
              ])}
            </select>
            <FieldError flash={proxyFlash} field="vo" />
          </label>
          <label className="inline">
            <input type="checkbox" name="acknowledge" value="yes" required /> I will keep this file private and delete it when done.
          </label>
          <FieldError flash={proxyFlash} field="acknowledge" />
          <div className="actions"><button type="submit" className="primary">Download proxy</button></div>
        </form>
      </section>
    </Console>
  );
}
