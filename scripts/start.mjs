#!/usr/bin/env node
// `npm start`: build the Next.js app if it has not been built, then run the
// portal's server entry. With no configuration it starts with the embedded
// defaults (SQLite under ./data, a new CA, the development IdP).
import { spawnSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
process.env.NEXT_TELEMETRY_DISABLED = "1";
if (!fs.existsSync(path.join(root, ".next", "BUILD_ID"))) {
  const build = spawnSync(process.execPath, [path.join(root, "node_modules/next/dist/bin/next"), "build"], { cwd: root, stdio: "inherit" });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
// A single serving process gets the flags server.ts gives its workers (lib/nodeFlags.ts): AsyncContextFrame where Node 22 offers it.
const flags = process.allowedNodeEnvironmentFlags.has("--experimental-async-context-frame") ? ["--experimental-async-context-frame"] : [];
const server = spawn(process.execPath, [...flags, "--import", "tsx", path.join(root, "server.ts")], { cwd: root, stdio: "inherit" });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.kill(sig));
server.on("exit", (code) => process.exit(code ?? 1));
