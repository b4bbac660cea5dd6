/**
 * Console sessions ended by logout (issue 12): the session cookie is sealed and carries its own
 * expiry, so logging out must also remember, server-side and for every instance, that this
 * session id is over. The list lives in the OidcPayload table under its own model (no schema
 * change); each entry expires with the session it ends, and the periodic purge of expired
 * artefacts (purgeExpiredOidcPayloads) drops it then.
 */
import type { Db } from "./client";

const MODEL = "ConsoleSessionRevocation";

/** Record that session `sid` ended; idempotent (a second logout with the same cookie changes nothing). */
export async function revokeConsoleSession(db: Db, sid: string, until: Date): Promise<void> {
  await db.oidcPayload.upsert({
    where: { model_id: { model: MODEL, id: sid } },
    create: { model: MODEL, id: sid, payload: "{}", expiresAt: until },
    update: {},
    select: { id: true },
  });
}

/** Whether session `sid` was ended by a logout. One indexed lookup (primary key). */
export async function isConsoleSessionRevoked(db: Db, sid: string): Promise<boolean> {
  const rows = await db.$queryRaw<{ id: string }[]>`SELECT "id" FROM "OidcPayload" WHERE "model" = ${MODEL} AND "id" = ${sid} LIMIT 1`;
  return rows.length > 0;
}
