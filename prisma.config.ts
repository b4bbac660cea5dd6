/**
 * Prisma CLI configuration (migrate, generate). The app itself never loads
 * this file; it reads DATABASE_URL through lib/config.ts. The CLI runs with
 * the JS (wasm) schema engine and driver adapters because the native engines
 * cannot be downloaded here (see ../shared/notes/stack-offline.md §1), with
 * three workarounds for Prisma 6.19 bugs, each marked below.
 */
import { defineConfig } from "prisma/config";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import type { SqlDriverAdapter, SqlQuery } from "@prisma/driver-adapter-utils";

// A schema that fails to parse (e.g. env("DATABASE_URL") unset) makes the CLI
// silently fall back to downloading a native engine; always give it a URL.
process.env.DATABASE_URL ??= "file:./data/certbridge.db";
const url = process.env.DATABASE_URL;
const isPg = /^postgres(ql)?:\/\//.test(url);

type ExecClient = { exec(sql: string): void };

function sqliteFactory() {
  const factory = new PrismaBetterSQLite3({ url });
  const connectShadow = factory.connectToShadowDb.bind(factory);
  // Workaround: `migrate dev` replays whole migration scripts through
  // executeRaw, but better-sqlite3's prepare() takes one statement only.
  factory.connectToShadowDb = async () => {
    const adapter = (await connectShadow()) as SqlDriverAdapter & { client: ExecClient };
    const executeRaw = adapter.executeRaw.bind(adapter);
    adapter.executeRaw = async (q: SqlQuery) => (q.args.length === 0 ? (adapter.client.exec(q.sql), 0) : executeRaw(q));
    return adapter;
  };
  return factory;
}

type PgResult = { fields?: { dataTypeID: number }[] };
type PgProto = { performIO(this: unknown, q: unknown): Promise<PgResult>; __nameTypeFix?: boolean };

// Workaround for prisma/prisma#27403: adapter-pg cannot decode the catalog
// types `name` (oid 19) and `"char"` (oid 18) that migrate's introspection reads.
function patchPgCatalogTypes(adapter: object) {
  const proto = Object.getPrototypeOf(Object.getPrototypeOf(adapter)) as PgProto;
  if (proto.__nameTypeFix) return;
  const performIO = proto.performIO;
  proto.performIO = async function (q: unknown) {
    const r = await performIO.call(this, q);
    for (const f of r?.fields ?? []) if (f.dataTypeID === 19 || f.dataTypeID === 18) f.dataTypeID = 25;
    return r;
  };
  proto.__nameTypeFix = true;
}

function pgFactory() {
  const u = new URL(url);
  // Discrete fields, not connectionString: the adapter builds the shadow pool
  // as {...config, database}, and a connectionString would override `database`.
  const cfg = {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username) || undefined,
    password: decodeURIComponent(u.password) || undefined,
    database: u.pathname.slice(1),
  };
  const factory = new PrismaPg(cfg);
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const a = await connect();
    patchPgCatalogTypes(a);
    return a;
  };
  // Workaround: the stock shadow database is dropped before its pool closes.
  factory.connectToShadowDb = async () => {
    const admin = await factory.connect();
    const name = `prisma_shadow_${crypto.randomUUID().replaceAll("-", "")}`;
    await admin.executeScript(`CREATE DATABASE "${name}"`);
    const shadow = await new PrismaPg({ ...cfg, database: name }).connect();
    patchPgCatalogTypes(shadow);
    const dispose = shadow.dispose.bind(shadow);
    shadow.dispose = async () => {
      await dispose();
      await admin.executeScript(`DROP DATABASE IF EXISTS "${name}"`);
      await admin.dispose();
    };
    return shadow;
  };
  return factory;
}

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: isPg ? "prisma/pg/schema.prisma" : "prisma/schema.prisma",
  migrations: { path: isPg ? "prisma/pg/migrations" : "prisma/migrations" },
  adapter: async () => (isPg ? pgFactory() : sqliteFactory()),
});
