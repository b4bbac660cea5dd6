import { portal } from "../../lib/runtime";
import { formatDuration } from "../../lib/duration";
import { Console, Time, requireAdmin } from "../_console/ui";

export const metadata = { title: "Admin · Certbridge" };

const PALETTE = ["#0b57d0", "#c77700", "#0d652d", "#a50e0e", "#6a1b9a", "#00796b", "#5d4037", "#455a64"];

/** Proxies per day and gateway as stacked bars: server-rendered SVG, with the numbers as a table for screen readers. */
function IssuanceChart({ days, clients }: { days: { day: string; byClient: { clientId: string | null; count: number }[] }[]; clients: string[] }) {
  const totals = days.map((d) => d.byClient.reduce((n, c) => n + c.count, 0));
  const max = Math.max(1, ...totals);
  const W = 600, H = 180, bar = W / days.length;
  const color = (c: string) => PALETTE[clients.indexOf(c) % PALETTE.length];
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H + 20}`} role="img" aria-labelledby="chart-title">
        <title id="chart-title">Proxies issued per day over the last 30 days, by gateway; busiest day {max}</title>
        <line x1="0" y1={H} x2={W} y2={H} stroke="#888" />
        {days.map((d, i) => {
          let y = H;
          return (
            <g key={d.day}>
              {d.byClient.map((c) => {
                const h = (c.count / max) * (H - 10);
                y -= h;
                return <rect key={c.clientId ?? "(portal)"} x={i * bar + 1} y={y} width={bar - 2} height={h} fill={color(c.clientId ?? "(portal)")}><title>{`${d.day} ${c.clientId ?? "(portal)"}: ${c.count}`}</title></rect>;
              })}
              {i % 5 === 4 || i === days.length - 1 ? <text x={i * bar + bar / 2} y={H + 14} fontSize="10" textAnchor="middle" fill="#555">{d.day.slice(5)}</text> : null}
            </g>
          );
        })}
        <text x="2" y="10" fontSize="10" fill="#555">{max}</text>
      </svg>
      <figcaption>
        <ul className="legend">
          {clients.map((c) => <li key={c}><span style={{ background: color(c) }} />{c}</li>)}
        </ul>
        <details>
          <summary>Numbers by day</summary>
          <div className="table-wrap">
            <table className="data">
              <thead><tr><th scope="col">Day</th>{clients.map((c) => <th key={c} scope="col">{c}</th>)}<th scope="col">Total</th></tr></thead>
              <tbody>
                {days.map((d, i) => (
                  <tr key={d.day}><td>{d.day}</td>{clients.map((c) => <td key={c}>{d.byClient.find((x) => (x.clientId ?? "(portal)") === c)?.count ?? 0}</td>)}<td>{totals[i]}</td></tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      </figcaption>
    </figure>
  );
}

export default async function AdminOverview() {
  const viewer = await requireAdmin("/admin");
  const o = await portal().console.overview.overview();
  const crlDue = o.crl.nextUpdate ? Math.round((o.crl.nextUpdate.getTime() - o.now.getTime()) / 3600_000) : null;
  return (
    <Console viewer={viewer} current="/admin">
      <h1>Overview</h1>
      <div className="stats">
        <div className="stat"><span className="n">{o.totalProxies30d}</span><span className="l">proxies in 30 days</span></div>
        <div className="stat"><span className="n">{o.people.active24h}</span><span className="l">people active today</span></div>
        <div className="stat"><span className="n">{o.people.active30d}</span><span className="l">people active in 30 days (of {o.people.total})</span></div>
        <div className="stat"><span className="n">{o.ca.daysLeft}</span><span className="l">days until the CA expires</span></div>
        <div className="stat"><span className="n">{o.crl.revokedEntries}</span><span className="l">entries on the CRL</span></div>
      </div>
      <h2>Issuance per day</h2>
      <IssuanceChart days={o.days} clients={o.clients} />
      <h2>Certificate authority</h2>
      <div className="table-wrap">
        <table className="data kv">
          <tbody>
            <tr><th scope="row">Subject</th><td className="dn">{o.ca.subject}</td></tr>
            <tr><th scope="row">Valid until</th><td><Time at={o.ca.notAfter} /> ({o.ca.daysLeft} days)</td></tr>
            <tr><th scope="row">Key</th><td>RSA {o.ca.keyBits} bits</td></tr>
            <tr><th scope="row">SHA-256 fingerprint</th><td><code>{o.ca.fingerprintSha256}</code></td></tr>
            <tr><th scope="row">CRL</th><td>number {o.crl.number}, last signed <Time at={o.crl.lastIssued} />, next update <Time at={o.crl.nextUpdate} />{crlDue !== null ? ` (in ${crlDue} h)` : ""}; each download is freshly signed and valid for {formatDuration(o.crl.lifetimeSeconds)} (<a href="/ca/crl.der">download</a>)</td></tr>
          </tbody>
        </table>
      </div>
      <h2>User certificates ending within 48 hours</h2>
      {o.nearExpiry.length ? (
        <ul>
          {o.nearExpiry.map((c) => (
            <li key={c.id}><a href={`/admin/certificates/${c.id}`}><code>{c.serialHex}</code></a> <span className="dn">{c.subject}</span> ends <Time at={c.notAfter} /></li>
          ))}
        </ul>
      ) : (
        <p className="muted">None. (User certificates are renewed automatically at the next request.)</p>
      )}
    </Console>
  );
}
