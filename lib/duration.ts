/**
 * Durations as operators and grid users write them: plain seconds ("43200"),
 * unit sums ("12h", "1d12h", "90m", "30s") and voms-proxy-init's "HH:MM".
 * Returns whole seconds; anything else is an error that says what was wrong.
 */
const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

export function parseDuration(text: string): number {
  const s = text.trim();
  let seconds: number;
  if (/^\d+$/.test(s)) {
    seconds = Number(s);
  } else if (/^\d+:[0-5]\d$/.test(s)) {
    const [h, m] = s.split(":").map(Number) as [number, number];
    seconds = h * 3600 + m * 60;
  } else if (/^(\d+[smhd])+$/.test(s)) {
    seconds = 0;
    for (const [, n, unit] of s.matchAll(/(\d+)([smhd])/g)) seconds += Number(n) * UNIT[unit as string]!;
  } else {
    throw new Error(`"${text}" is not a duration (use seconds, 12h, 1d12h, 90m or HH:MM)`);
  }
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new Error(`"${text}" must be a positive duration`);
  return seconds;
}

export function formatDuration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const parts = [d && `${d}d`, h && `${h}h`, m && `${m}m`, s && `${s}s`].filter(Boolean);
  return parts.length ? parts.join("") : "0s";
}
