// ESLint here checks boundaries between the project's parts, not style: no
// style rule set is turned on. `npm run lint`; test/lint.test.ts proves each
// rule fires on a planted violation and stays quiet on clean code.
//
// - app/ does not import lib/db: pages and routes go through lib/ (the Portal).
// - lib/pki does not import lib/voms: X.509 knows nothing of VOMS.
// - Only lib/db imports the generated Prisma client (lib/db/generated,
//   @prisma/client) or calls Prisma ($transaction, db.<model>.findMany, ...).
// - process.env is read by lib/config.ts (and packages/proxy-cli/src/env.ts, the CLI's own
//   config) only, in lib/, app/, cli/ and server.ts. Harnesses (test/,
//   bench/, scripts/, e2e/, examples/) may read it.
import path from "node:path";
import { fileURLToPath } from "node:url";
import tsParser from "@typescript-eslint/parser";

const ROOT = path.dirname(fileURLToPath(import.meta.url));

/** The project-relative path an import resolves to (without extension or /index), or null for a package. */
function resolveImport(filename, spec) {
  if (!spec.startsWith(".") && !path.isAbsolute(spec)) return null;
  const abs = path.resolve(path.dirname(filename), spec);
  return path
    .relative(ROOT, abs)
    .split(path.sep)
    .join("/")
    .replace(/\.(ts|tsx|mts|cts|js|jsx|mjs|cjs)$/, "")
    .replace(/\/index$/, "");
}

const within = (rel, dir) => rel === dir || rel.startsWith(`${dir}/`);

/** A rule that refuses imports (static, dynamic, re-exports, require) resolving into `dirs` or naming `packages`. */
function importBoundary(description) {
  return {
    meta: {
      type: "problem",
      docs: { description },
      schema: [
        {
          type: "object",
          properties: {
            dirs: { type: "array", items: { type: "string" } },
            packages: { type: "array", items: { type: "string" } },
            message: { type: "string" },
          },
          additionalProperties: false,
        },
      ],
      messages: { boundary: "'{{spec}}': {{message}}" },
    },
    create(context) {
      const { dirs = [], packages = [], message = description } = context.options[0] ?? {};
      const filename = context.filename;
      const check = (node, spec) => {
        if (typeof spec !== "string") return;
        const rel = resolveImport(filename, spec);
        const hit = rel === null ? packages.some((p) => spec === p || spec.startsWith(`${p}/`)) : dirs.some((d) => within(rel, d));
        if (hit) context.report({ node, messageId: "boundary", data: { spec, message } });
      };
      const fromSource = (node) => node.source && check(node.source, node.source.value);
      return {
        ImportDeclaration: fromSource,
        ExportNamedDeclaration: fromSource,
        ExportAllDeclaration: fromSource,
        ImportExpression: (node) => node.source.type === "Literal" && check(node.source, node.source.value),
        TSImportEqualsDeclaration: (node) =>
          node.moduleReference.type === "TSExternalModuleReference" && check(node.moduleReference.expression, node.moduleReference.expression.value),
        CallExpression: (node) =>
          node.callee.type === "Identifier" && node.callee.name === "require" && node.arguments[0]?.type === "Literal" && check(node.arguments[0], node.arguments[0].value),
      };
    },
  };
}

const PRISMA_MODELS = /^(caRecord|identity|certificate|auditEvent|oidcPayload|gatewayClient|sshKey)$/;
const PRISMA_OPERATIONS = /^(findUnique|findUniqueOrThrow|findFirst|findFirstOrThrow|findMany|create|createMany|createManyAndReturn|update|updateMany|updateManyAndReturn|upsert|delete|deleteMany|count|aggregate|groupBy)$/;
const PRISMA_CLIENT_METHODS = /^\$(transaction|queryRaw|queryRawUnsafe|executeRaw|executeRawUnsafe|connect|disconnect|on|extends)$/;

/** Prisma calls (`x.$transaction(...)`, `x.identity.findMany(...)`) outside lib/db. */
const noPrismaCalls = {
  meta: {
    type: "problem",
    docs: { description: "only lib/db calls Prisma" },
    schema: [],
    messages: { call: "'{{what}}' is a Prisma call: only lib/db talks to Prisma; add or use a function there" },
  },
  create(context) {
    const name = (n) => (n.type === "Identifier" ? n.name : n.type === "Literal" ? String(n.value) : null);
    return {
      MemberExpression(node) {
        if (node.computed && node.property.type !== "Literal") return;
        const prop = name(node.property);
        if (!prop) return;
        if (PRISMA_CLIENT_METHODS.test(prop)) context.report({ node, messageId: "call", data: { what: prop } });
        else if (PRISMA_OPERATIONS.test(prop) && node.object.type === "MemberExpression" && !node.object.computed) {
          const model = name(node.object.property);
          if (model && PRISMA_MODELS.test(model)) context.report({ node, messageId: "call", data: { what: `${model}.${prop}` } });
        }
      },
    };
  },
};

const certbridge = {
  meta: { name: "certbridge-boundaries" },
  rules: {
    "no-db-in-app": importBoundary("app/ does not import lib/db: go through lib/ (the Portal, lib/console, ...)"),
    "no-voms-in-pki": importBoundary("lib/pki does not import lib/voms: X.509 code knows nothing of VOMS"),
    "no-prisma-client-outside-db": importBoundary("only lib/db imports the generated Prisma client"),
    "no-prisma-calls": noPrismaCalls,
  },
};

const PROCESS_ENV = "process.env is read by lib/config.ts only (the researcher's CLI: packages/proxy-cli/src/env.ts): take the value from the Config";

export default [
  {
    ignores: [
      "node_modules/**",
      ".next/**",
      "lib/db/generated/**",
      "test-results/**",
      "playwright-report/**",
      "tmp/**",
      "data/**",
      "dist/**",
      "coverage/**",
      "next-env.d.ts",
    ],
  },
  {
    files: ["**/*.{ts,tsx,mts,cts,js,jsx,mjs,cjs}"],
    languageOptions: { parser: tsParser, ecmaVersion: "latest", sourceType: "module" },
    plugins: { certbridge },
    rules: {
      "certbridge/no-prisma-client-outside-db": [
        "error",
        { dirs: ["lib/db/generated"], packages: ["@prisma/client", ".prisma/client"], message: "only lib/db imports the generated Prisma client: use the functions of lib/db" },
      ],
    },
  },
  {
    files: ["lib/db/**"],
    rules: { "certbridge/no-prisma-client-outside-db": "off" },
  },
  {
    files: ["app/**"],
    rules: {
      "certbridge/no-db-in-app": ["error", { dirs: ["lib/db"], message: "app/ does not import lib/db: go through lib/ (the Portal, lib/console, ...)" }],
    },
  },
  {
    files: ["lib/pki/**"],
    rules: {
      "certbridge/no-voms-in-pki": ["error", { dirs: ["lib/voms"], message: "lib/pki does not import lib/voms: X.509 code knows nothing of VOMS" }],
    },
  },
  {
    files: ["lib/**", "app/**", "cli/**", "packages/proxy-cli/src/**", "server.ts"],
    ignores: ["lib/db/**"],
    rules: { "certbridge/no-prisma-calls": "error" },
  },
  {
    files: ["lib/**", "app/**", "cli/**", "packages/proxy-cli/src/**", "server.ts"],
    ignores: ["lib/config.ts", "packages/proxy-cli/src/env.ts"],
    rules: {
      // Also catches destructuring: const { env } = process.
      "no-restricted-properties": ["error", { object: "process", property: "env", message: PROCESS_ENV }],
      "no-restricted-imports": [
        "error",
        { paths: [{ name: "process", importNames: ["env"], message: PROCESS_ENV }, { name: "node:process", importNames: ["env"], message: PROCESS_ENV }] },
      ],
    },
  },
];
