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

/** CPU seconds (user + system, all threads) used so far by a process and its descendants (the cluster's workers), or NaN. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const own = (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100 on Linux)
    return own + childrenOf(pid).reduce((sum, c) => sum + processCpuSeconds(c), 0);
  } catch {
    return NaN;
  }
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
