/**
 * The data layer's contracts (SQLite here; PostgreSQL via test/postgres.test.ts):
 * stored OIDC artefacts carry their client in a column, and removing a client
 * removes its grants and tokens by that column, not by a text scan; consents
 * are read through lib/oidc/grants; audit rows commit with their change or not
 * at all; listings never select secrets.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { AdapterPayload } from "oidc-provider";
import { startTestPortal, type TestPortal } from "./helpers";
import { prismaAdapterFactory } from "../lib/oidc/adapter";
import { findClient, listClients, registerClient, removeClient } from "../lib/oidc/clients";
import { deleteGrantOfAccount, listGrantsOfAccount } from "../lib/oidc/grants";
import { createIdentity, findClientRow, findIdentity, listClientRows, recordAudit } from "../lib/db";
import { TokenVault } from "../lib/oidc/tokenVault";

let portal: TestPortal;
const A = "gw-alpha";
const B = "gw-beta";
let person: string;

before(async () => {
  portal = await startTestPortal();
  for (const [id, name] of [[A, "Alpha"], [B, "Beta"]] as const) {
    await registerClient(portal.cb.db, portal.config.kek, { id, name, redirectUris: [`https://${id}.example/cb`] }, { actor: "test" });
  }
  const identity = await createIdentity(
    portal.cb.db,
    { identifierHash: "data-access-test", issuer: "https://idp.example", sub: "dat", subject: "/DC=org/CN=Data Access", displayName: "Data Access", email: null, organisation: "Example", claims: {} },
    { action: "identity.create", actor: "test" },
  );
  person = identity!.id;
});
after(async () => portal?.cleanup());

/** The row id of a bearer artefact (its value's keyed hash). */
const stored = (value: string) => new TokenVault(portal.config.kek).index(value);

function store(model: string, id: string, payload: AdapterPayload, expiresIn = 3600) {
  const Adapter = prismaAdapterFactory(portal.cb.db, portal.config.kek);
  return new Adapter(model).upsert(id, payload, expiresIn);
}

describe("OIDC artefacts by client", () => {
  test("the adapter stores each artefact's client in its column", async () => {
    await store("Grant", "g-col", { accountId: "someone", clientId: A, openid: { scope: "openid" } } as AdapterPayload);
    const row = await portal.cb.db.oidcPayload.findUnique({ where: { model_id: { model: "Grant", id: "g-col" } } });
    assert.equal(row?.clientId, A);
    await store("Session", "s-col", { accountId: "someone", authorizations: { [A]: { grantId: "g-col" } } } as unknown as AdapterPayload);
    // A session's id is its cookie value: stored by keyed hash (lib/oidc/tokenVault.ts).
    assert.equal(await portal.cb.db.oidcPayload.count({ where: { model: "Session", id: "s-col" } }), 0);
    const session = await portal.cb.db.oidcPayload.findUnique({ where: { model_id: { model: "Session", id: stored("s-col") } } });
    assert.ok(session);
    assert.equal(session.clientId, null);
  });

  test("removing a client deletes its grants and tokens, and leaves another client's whose JSON contains the first id", async () => {
    const db = portal.cb.db;
    await store("Grant", "g-a", { accountId: "acct-1", clientId: A, openid: { scope: "openid proxy" } } as AdapterPayload);
    await store("AccessToken", "at-a", { accountId: "acct-1", clientId: A, grantId: "g-a" } as AdapterPayload);
    await store("RefreshToken", "rt-a", { accountId: "acct-1", clientId: A, grantId: "g-a" } as AdapterPayload);
    // B's artefacts mention A's id in their JSON, even as a "clientId" member: a text scan would take them.
    const mention = { note: `"clientId":"${A}"`, extra: { clientId: A } };
    await store("Grant", "g-b", { accountId: "acct-1", clientId: B, openid: { scope: "openid" }, ...mention } as unknown as AdapterPayload);
    await store("AccessToken", "at-b", { accountId: "acct-1", clientId: B, grantId: "g-b", ...mention } as unknown as AdapterPayload);
    await store("RefreshToken", "rt-b", { accountId: "acct-1", clientId: B, grantId: "g-b", ...mention } as unknown as AdapterPayload);

    await removeClient(db, A, { actor: "test", reason: "gone" });

    assert.equal(await findClient(db, A), null);
    assert.equal(await db.oidcPayload.count({ where: { id: { in: ["g-a", stored("at-a"), stored("rt-a"), "g-col"] } } }), 0);
    const left = await db.oidcPayload.findMany({ where: { id: { in: ["g-b", stored("at-b"), stored("rt-b")] } }, select: { id: true, clientId: true } });
    assert.deepEqual(left.map((r) => r.id).sort(), ["g-b", stored("at-b"), stored("rt-b")].sort());
    assert.ok(left.every((r) => r.clientId === B));
    assert.ok(await findClient(db, B));
    const event = await db.auditEvent.findFirst({ where: { action: "client.remove", clientId: A } });
    assert.deepEqual(JSON.parse(event!.details), { name: "Alpha", reason: "gone" });
  });
});

describe("consents through lib/oidc/grants", () => {
  test("a person's grants are listed with scopes and refresh tokens; only they can withdraw one, which takes its tokens", async () => {
    const db = portal.cb.db;
    const iat = Math.floor(Date.now() / 1000) - 60;
    await store("Grant", "g-c", { accountId: person, clientId: B, iat, openid: { scope: "openid offline_access proxy" } } as AdapterPayload);
    await store("RefreshToken", "rt-c1", { accountId: person, clientId: B, grantId: "g-c" } as AdapterPayload, 7200);
    await store("RefreshToken", "rt-c2", { accountId: person, clientId: B, grantId: "g-c" } as AdapterPayload, 3600);
    const now = new Date();
    const [grant, ...others] = await listGrantsOfAccount(db, person, now);
    assert.equal(others.length, 0);
    assert.equal(grant!.grantId, "g-c");
    assert.equal(grant!.clientId, B);
    assert.deepEqual(grant!.scopes, ["openid", "offline_access", "proxy"]);
    assert.equal(grant!.grantedAt?.getTime(), iat * 1000);
    assert.equal(grant!.refreshTokens, 2);
    assert.ok(grant!.refreshUntil!.getTime() > now.getTime() + 3600_000);

    assert.equal(await deleteGrantOfAccount(db, "acct-other", "g-c", { action: "consent.revoke", actor: "acct-other" }), null);
    assert.equal(await db.oidcPayload.count({ where: { grantId: "g-c" } }), 2);
    // It reports what it withdrew: the client, and the live tokens under the grant by kind.
    assert.deepEqual(await deleteGrantOfAccount(db, person, "g-c", { action: "consent.revoke", actor: person }), { clientId: B, tokens: { RefreshToken: 2 } });
    assert.equal(await db.oidcPayload.count({ where: { OR: [{ grantId: "g-c" }, { id: "g-c" }] } }), 0);
    const event = await db.auditEvent.findFirst({ where: { action: "consent.revoke", actor: person } });
    assert.equal(event!.clientId, B);
    assert.deepEqual(JSON.parse(event!.details), { grantId: "g-c", tokens: { RefreshToken: 2 } });
  });
});

describe("audit and secrets", () => {
  test("recordAudit writes alone, in a batch, and inside a transaction that fails writes nothing", async () => {
    const db = portal.cb.db;
    const one = await recordAudit(db, { action: "test.one", actor: "test", details: { n: 1 } });
    assert.ok(one.id);
    assert.equal((await recordAudit(db, [{ action: "test.many", actor: "t" }, { action: "test.many", actor: "t", outcome: "refused" }])).count, 2);
    assert.equal(await db.auditEvent.count({ where: { action: "test.many" } }), 2);
    // The same client id twice in one transaction: the whole batch, audit included, rolls back.
    await assert.rejects(
      db.$transaction([
        recordAudit(db, { action: "test.rolled_back", actor: "test" }),
        db.gatewayClient.create({ data: { id: B, name: "dup", isPublic: true, redirectUris: "[]", scopes: "openid", maxProxyLifetime: 60 } }),
      ]),
    );
    assert.equal(await db.auditEvent.count({ where: { action: "test.rolled_back" } }), 0);
  });

  test("client listings and lookups do not select the sealed secret", async () => {
    const db = portal.cb.db;
    const row = await findClientRow(db, B);
    assert.ok(row);
    assert.ok(!("secretEnc" in row));
    assert.ok((await listClientRows(db)).every((c) => !("secretEnc" in c)));
    assert.ok((await listClients(db)).every((c) => !("secretEnc" in c)));
    assert.equal(await findIdentity(db, "nobody"), null);
  });
});
