/**
 * The operators' question, "who got which certificate, when, through which
 * client", as one query: filters plus keyset pagination (newest first, by
 * createdAt then id), so page 5,000 of 100,000 rows costs what page 1 costs.
 * Groundwork for the admin console (issue 5); the CLI's `cert list` is the
 * simple form.
 */
import { z } from "zod";
import { invalidRequest } from "../errors";
import { searchCertificateRows, type Db } from "../db";

export const certificateSearch = z.object({
  /** Part of the subject DN (case as stored). */
  subject: z.string().trim().min(1).max(200).optional(),
  /** A serial: hex (optionally with colons) or, for proxies, decimal. */
  serial: z.string().trim().regex(/^[0-9A-Fa-f:]{1,64}$/, "a serial is hex (or decimal for proxies)").optional(),
  kind: z.enum(["user", "proxy"]).optional(),
  status: z.enum(["valid", "expired", "revoked"]).optional(),
  clientId: z.string().min(1).max(64).optional(),
  vo: z.string().regex(/^[A-Za-z0-9._-]+$/).optional(),
  keySource: z.enum(["csr", "spki", "server", "ca"]).optional(),
  identityId: z.string().min(1).optional(),
  issuedAfter: z.coerce.date().optional(),
  issuedBefore: z.coerce.date().optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});
export type CertificateSearch = z.input<typeof certificateSearch>;

interface Cursor {
  createdAt: Date;
  id: string;
}

const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify({ t: c.createdAt.toISOString(), i: c.id })).toString("base64url");

function decodeCursor(text: string): Cursor {
  try {
    const { t, i } = z.object({ t: z.iso.datetime(), i: z.string().min(1) }).parse(JSON.parse(Buffer.from(text, "base64url").toString("utf8")));
    return { createdAt: new Date(t), id: i };
  } catch (e) {
    throw invalidRequest("the page cursor is invalid; start again from the first page", e);
  }
}

export async function searchCertificates(db: Db, input: CertificateSearch, now: Date) {
  const parsed = certificateSearch.safeParse(input);
  if (!parsed.success) throw invalidRequest(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  const f = parsed.data;
  const after = f.cursor ? decodeCursor(f.cursor) : undefined;
  const serialHex = f.serial?.replace(/:/g, "").toLowerCase().replace(/^0+(?=.)/, "");
  const rows = await searchCertificateRows(
    db,
    {
      subject: f.subject,
      serialHex,
      serialDec: serialHex && /^\d+$/.test(f.serial!) ? f.serial! : undefined,
      kind: f.kind,
      status: f.status,
      clientId: f.clientId,
      vo: f.vo,
      keySource: f.keySource,
      identityId: f.identityId,
      issuedAfter: f.issuedAfter,
      issuedBefore: f.issuedBefore,
      after,
    },
    f.limit + 1,
    now,
  );
  const page = rows.slice(0, f.limit);
  const last = page[page.length - 1];
  return {
    rows: page.map((r) => ({ ...r, state: r.status === "valid" && r.notAfter <= now ? ("expired" as const) : (r.status as "valid" | "revoked") })),
    nextCursor: rows.length > f.limit && last ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null,
  };
}
