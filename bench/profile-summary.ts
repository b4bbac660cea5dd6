/**
 * Where CPU profiles spend their time, printed: self-time share by part of the code (node_modules/<package>,
 * lib/<dir>, node:internal/…, wasm, GC, …) and the top functions, summed over the files given
 * (bench/lib/cpuProfile.ts).
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile>… [--root <checkout>] [--top 25]
 *
 * A directory stands for the .cpuprofile files in it (e.g. the BENCH_CPU_PROF directory of
 * bench/throughput.ts or bench/getproxy-http.ts). --root is the checkout the profiled server ran from
 * (default: this one), so that its files are named lib/…, app/… .
 */
import fs from "node:fs";
import path from "node:path";
import { ROOT } from "../test/helpers";
import { formatSummary, summarizeFiles } from "./lib/cpuProfile";

const args = process.argv.slice(2);
let root = ROOT;
let top = 25;
const files: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === "--root") root = path.resolve(args[++i] ?? ".");
  else if (a === "--top") top = Number(args[++i]);
  else if (fs.statSync(a).isDirectory()) files.push(...fs.readdirSync(a).filter((f) => f.endsWith(".cpuprofile")).map((f) => path.join(a, f)));
  else files.push(a);
}
if (files.length === 0) {
  console.error("usage: node --import tsx bench/profile-summary.ts <file.cpuprofile | directory>… [--root <checkout>] [--top 25]");
  process.exitCode = 2;
} else {
  for (const line of formatSummary(summarizeFiles(files, root), { functions: top })) console.log(line);
}
