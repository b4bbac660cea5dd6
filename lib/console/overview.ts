/** The admin console's overview: proxies per day by gateway, people, certificates ending soon, CA and CRL. */
import type { Certbridge } from "../certbridge";
import { countIdentities, countProxiesByClient, countRevokedCertificates, getCaRecord, listUserCertificatesEndingBefore } from "../db";
import { describeCa } from "../ca/authority";
import { DAY } from "./forms";

export class AdminOverview {
  constructor(private readonly cb: Certbridge) {}

  async overview() {
    const now = this.cb.clock();
    const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    const days = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const from = new Date(today - (29 - i) * DAY);
        return { day: from.toISOString().slice(0, 10), byClient: await countProxiesByClient(this.cb.db, from, new Date(from.getTime() + DAY)) };
      }),
    );
    const [people, people24h, nearExpiry, caRecord, revoked] = await Promise.all([
      countIdentities(this.cb.db, new Date(now.getTime() - 30 * DAY)),
      countIdentities(this.cb.db, new Date(now.getTime() - DAY)),
      listUserCertificatesEndingBefore(this.cb.db, now, new Date(now.getTime() + 2 * DAY), 10),
      getCaRecord(this.cb.db, this.cb.ca.fingerprint),
      countRevokedCertificates(this.cb.db, this.cb.ca.subject, now),
    ]);
    const ca = describeCa(this.cb.ca);
    return {
      now,
      days,
      clients: [...new Set(days.flatMap((d) => d.byClient.map((c) => c.clientId ?? "(portal)")))].sort(),
      totalProxies30d: days.reduce((n, d) => n + d.byClient.reduce((m, c) => m + c.count, 0), 0),
      people: { active30d: people.active, active24h: people24h.active, total: people.total },
      nearExpiry,
      ca: { ...ca, daysLeft: Math.floor((ca.notAfter.getTime() - now.getTime()) / DAY) },
      crl: {
        number: caRecord?.crlNumber ?? 0,
        lastIssued: caRecord?.crlIssuedAt ?? null,
        nextUpdate: caRecord?.crlNextUpdate ?? null,
        lifetimeSeconds: this.cb.config.ca.crlLifetimeSeconds,
        revokedEntries: revoked,
        url: this.cb.config.ca.crlUrl,
      },
    };
  }
}
