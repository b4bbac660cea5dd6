/**
 * The benches' view of the server's processes through /proc (Linux; empty or NaN elsewhere): its
 * children (the cluster's workers), their CPU time and resident size.
 */
import fs from "node:fs";

/** The child processes of `pid`. */
export function childrenOf(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/))
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** CPU seconds (user + system) used so far by one process, without its children, or NaN. */
function ownCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100 on Linux)
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system, all threads) used so far by a process and its descendants (the cluster's workers), or NaN. */
export function processCpuSeconds(pid: number): number {
  const own = ownCpuSeconds(pid);
  if (!Number.isFinite(own)) return NaN;
  return own + childrenOf(pid).reduce((sum, c) => sum + processCpuSeconds(c), 0);
}

/** VmRSS in MB, or NaN. */
export function rssMb(pid: number): number {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb ? Number(kb) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU seconds used so far by each process whose command name is `name` (e.g. "postgres": the server and each backend, counted alone). */
export function cpuByProcessNamed(name: string): Map<number, number> {
  const out = new Map<number, number>();
  let entries: string[] = [];
  try {
    entries = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const d of entries) {
    try {
      if (fs.readFileSync(`/proc/${d}/comm`, "utf8").trim() !== name) continue;
    } catch {
      continue;
    }
    const s = ownCpuSeconds(Number(d));
    if (Number.isFinite(s)) out.set(Number(d), s);
  }
  return out;
}

/** CPU seconds between two readings of cpuByProcessNamed; a process started in between counts whole. */
export function cpuSecondsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, s] of after) sum += s - (before.get(pid) ?? 0);
  return sum;
}

/** Busy and total CPU seconds of the whole machine so far, all cores (/proc/stat; USER_HZ = 100). */
export function machineCpuSeconds(): { busy: number; total: number } {
  try {
    const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: (total - idle) / 100, total: total / 100 };
  } catch {
    return { busy: NaN, total: NaN };
  }
}
