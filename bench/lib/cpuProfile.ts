/**
 * Where a V8 CPU profile (.cpuprofile, from node:inspector or --cpu-prof) spends its time: self time
 * (the function on top of the stack when sampled) summed over one or more profiles, by part of the
 * code and by function. Used by bench/throughput.ts and bench/profile-summary.ts.
 *
 * Parts: node_modules/<package>, lib/<dir> (lib/<file> at lib's top), other files of the checkout by
 * their first path segment (app, server.ts, .next), node:internal/<area> and node:<module> for Node's
 * own JavaScript, wasm, GC, "(program)" (V8 and native code with no JavaScript frame on top) and
 * "native ← <part>" (C++ bindings and V8 builtins, which have no script URL, by the part of the code
 * that called them: better-sqlite3's `run` is SQLite's time, node:internal/crypto's `sign` OpenSSL's).
 * Idle samples (the event loop waiting) are counted apart: shares are of the busy samples.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface ProfileSummary {
  files: number;
  /** busy samples (not idle) */
  samples: number;
  idleSamples: number;
  /** microseconds profiled, summed over the files */
  micros: number;
  byPart: [string, number][];
  byFunction: [string, number][];
}

/** A script URL relative to the checkout at `root` (or the file path when outside it), "" if it is no file. */
function filePath(url: string, root: string): string {
  if (!url) return "";
  let file = url;
  if (url.startsWith("file://")) {
    try {
      file = fileURLToPath(url);
    } catch {
      return url;
    }
  } else if (!path.isAbsolute(url)) return url;
  const rel = path.relative(root, file);
  return rel.startsWith("..") || path.isAbsolute(rel) ? file : rel.split(path.sep).join("/");
}

/** The part of the code a frame belongs to (see the module comment). */
export function partOf(frame: CallFrame, root: string): string {
  const name = frame.functionName;
  if (name === "(garbage collector)") return "GC";
  if (name === "(program)" || name === "(root)") return "(program)";
  const url = frame.url;
  if (url.startsWith("wasm://") || /^wasm-function\[/.test(name)) return "wasm";
  if (url.startsWith("node:")) {
    const m = /^node:internal\/([^/.]+)/.exec(url);
    return m ? `node:internal/${m[1]}` : url.replace(/\.js$/, "");
  }
  if (!url) return "native";
  const file = filePath(url, root);
  const nm = file.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const [a, b] = file.slice(nm + "node_modules/".length).split("/");
    return `node_modules/${a?.startsWith("@") ? `${a}/${b}` : a}`;
  }
  if (path.isAbsolute(file)) return `other: ${file}`;
  const segments = file.split("/");
  if (segments[0] === "lib" && segments.length > 2) return `lib/${segments[1]}`;
  return segments[0] === "lib" ? file : segments[0]!;
}

/** Self-time samples of `profiles` summed by part and by function; `root` is the checkout the profiled server ran from. */
export function summarize(profiles: CpuProfile[], root: string): ProfileSummary {
  const byPart = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let samples = 0;
  let idleSamples = 0;
  let micros = 0;
  for (const profile of profiles) {
    micros += profile.endTime - profile.startTime;
    const counts = new Map<number, number>();
    for (const id of profile.samples ?? []) counts.set(id, (counts.get(id) ?? 0) + 1);
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    const parents = new Map<number, ProfileNode>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parents.set(c, n);
    const where = (frame: CallFrame) => `${filePath(frame.url, root).replace(/^.*node_modules\//, "")}:${frame.lineNumber + 1}`;
    for (const [id, count] of counts) {
      const frame = nodes.get(id)?.callFrame;
      if (!frame) continue;
      if (frame.functionName === "(idle)") {
        idleSamples += count;
        continue;
      }
      samples += count;
      let part = partOf(frame, root);
      let location = frame.url ? where(frame) : part;
      if (part === "native") {
        // the nearest caller with a script
        let caller = parents.get(id);
        while (caller && !caller.callFrame.url) caller = parents.get(caller.id);
        if (caller) {
          part = `native ← ${partOf(caller.callFrame, root)}`;
          location = `native, called from ${caller.callFrame.functionName || "(anonymous)"} ${where(caller.callFrame)}`;
        }
      }
      byPart.set(part, (byPart.get(part) ?? 0) + count);
      const key = `${frame.functionName || "(anonymous)"}  ${location}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + count);
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { files: profiles.length, samples, idleSamples, micros, byPart: sorted(byPart), byFunction: sorted(byFunction) };
}

/** Read and summarize .cpuprofile files. */
export function summarizeFiles(files: string[], root: string): ProfileSummary {
  return summarize(
    files.map((f) => JSON.parse(fs.readFileSync(f, "utf8")) as CpuProfile),
    root,
  );
}

/** The summary as lines: parts (all above 0.1 %, at most `parts`), then the top `functions` functions. */
export function formatSummary(s: ProfileSummary, opts: { parts?: number; functions?: number } = {}): string[] {
  const share = (n: number) => `${((100 * n) / Math.max(1, s.samples)).toFixed(1).padStart(5)} %`;
  const total = s.samples + s.idleSamples;
  const lines = [
    `${s.files} profile(s), ${(s.micros / 1e6).toFixed(1)} s sampled, ${s.samples} busy samples, idle ${((100 * s.idleSamples) / Math.max(1, total)).toFixed(1)} % of all samples; shares below are of the busy samples (self time)`,
    "by part:",
  ];
  for (const [part, n] of s.byPart.slice(0, opts.parts ?? 40)) if (n / Math.max(1, s.samples) >= 0.001) lines.push(`  ${share(n)}  ${part}`);
  lines.push(`top ${opts.functions ?? 25} functions:`);
  for (const [fn, n] of s.byFunction.slice(0, opts.functions ?? 25)) lines.push(`  ${share(n)}  ${fn}`);
  return lines;
}
