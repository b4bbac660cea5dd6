/**
 * Source hygiene: no tracked source file may import or read a file by absolute path. Such a file
 * builds on the machine it was written on (and on CI there, where that checkout still exists) and
 * breaks in every other clone. Flagged:
 *   - this checkout's own absolute path, or its parent folder's, anywhere in a source file;
 *   - an import, require, `/// <reference path>` or tsconfig path that is absolute (or file://);
 *   - a file-system read of an absolute path outside the system's own folders (/usr, /etc, /dev…:
 *     Debian's tools and devices live there, at the same place on every machine).
 *
 *   node --import tsx scripts/check-paths.ts      (exit 1 and one line per finding)
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface Finding {
  file: string;
  line: number;
  text: string;
  why: string;
}

const SOURCE = /\.(c|m)?(t|j)sx?$|\.(sh|bash|json|cc|c|h)$|(^|\/)(Makefile|Dockerfile)$/;
/** Folders that are the same on every Debian/Ubuntu machine: reading there is not reaching into a checkout. */
const SYSTEM_ROOTS = ["/usr/", "/etc/", "/dev/", "/proc/", "/sys/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/run/", "/var/lib/", "/tmp/"];

const COMMON_PARENTS = ["/", "/home/", "/srv/", "/opt/", "/tmp/", "/root/", "/mnt/", "/var/", "/usr/", "/usr/local/", "/usr/src/"];

const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+|<reference\s+path=)(["'`])((?:\/|file:\/\/)[^"'`]*)\1/g;
const READ =
  /\b(?:readFileSync|readFile|createReadStream|existsSync|statSync|lstatSync|readdirSync|openSync|open|copyFileSync|cpSync|accessSync|realpathSync|opendirSync|source|cat)\s*\(?\s*(["'`])(\/[^"'`\s]*)\1/g;

/** Findings in one file's text. `roots`: absolute folders that must never be named (this checkout, its parent). */
export function scanText(file: string, text: string, roots: readonly string[]): Finding[] {
  const out: Finding[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    const at = (why: string) => out.push({ file, line: i + 1, text: line.trim().slice(0, 160), why });
    for (const root of roots) if (line.includes(root)) at(`names the absolute path ${root}`);
    for (const m of line.matchAll(IMPORT)) at(`imports by absolute path ${m[2]}`);
    for (const m of line.matchAll(READ)) {
      const p = m[2]!;
      // A system folder itself ("/proc") as well as what lies in it.
      if (!SYSTEM_ROOTS.some((r) => p.startsWith(r) || p === r.slice(0, -1)) && p !== "/") at(`reads by absolute path ${p}`);
    }
  });
  if (/(^|\/)tsconfig[^/]*\.json$/.test(file)) {
    for (const m of text.matchAll(/"(\/(?!\*)[^"]*)"/g)) {
      const lineNo = text.slice(0, m.index).split("\n").length;
      out.push({ file, line: lineNo, text: m[0], why: `tsconfig names an absolute path ${m[1]}` });
    }
  }
  return out;
}

/** The tracked source files of the checkout at `top` (git's list; every file when it is not a checkout). */
export function sourceFiles(top: string): string[] {
  let files: string[];
  try {
    files = execFileSync("git", ["ls-files", "-z"], { cwd: top, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\0").filter(Boolean);
  } catch {
    files = (fs.readdirSync(top, { recursive: true }) as string[]).filter((f) => !f.startsWith("node_modules") && !f.startsWith(".git"));
  }
  return files.filter((f) => SOURCE.test(f) && !/(^|\/)package-lock\.json$/.test(f));
}

export function checkCheckout(top: string): Finding[] {
  // The parent folder too (a sibling checkout, shared material beside it), unless it is a folder
  // every machine has, where a path in a test fixture ("file:/srv/cb.db") is only a string.
  const parent = `${path.dirname(top)}/`;
  const roots = [`${top}/`, ...(COMMON_PARENTS.includes(parent) ? [] : [parent])];
  const findings: Finding[] = [];
  for (const f of sourceFiles(top)) {
    const full = path.join(top, f);
    if (!fs.existsSync(full) || fs.statSync(full).size > 2 * 1024 * 1024) continue;
    findings.push(...scanText(f, fs.readFileSync(full, "utf8"), roots));
  }
  return findings;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const findings = checkCheckout(top);
  for (const f of findings) console.error(`${f.file}:${f.line}: ${f.why}: ${f.text}`);
  if (findings.length) {
    console.error(`check-paths: ${findings.length} absolute path${findings.length > 1 ? "s" : ""}; use paths relative to the file (import.meta.dirname) instead`);
    process.exit(1);
  }
  console.log(`check-paths: ${sourceFiles(top).length} tracked source files, no absolute paths`);
}
