/**
 * certbridge-proxy-info: what is in a proxy file, like `voms-proxy-info -all`
 * (subject, issuer, identity, type, strength, path, time left, and each VOMS
 * AC's VO, FQANs and validity), plus the script checks --exists and
 * --valid HH:MM (exit 0 or 1, nothing printed), --timeleft, and --fqan
 * (like `voms-proxy-info -fqan`). FQANs are printed exactly as the AC
 * carries them (Certbridge writes the VOMS long form).
 *
 * It reads and parses; it does not validate the chain or the AC signatures
 * (grid-proxy-init -verify and voms-verify do that).
 */
import fs from "node:fs";
import { inspectProxyFile, ProxyFileError, type ProxyFileInfo } from "../../../lib/inspect/proxyFile";
import { proxyToolEnvironment } from "./env";
import { parseProxyInfoArgs, PROXY_INFO_USAGE, UsageError } from "./proxyOptions";

const NAME = "certbridge-proxy-info";

/** grid-proxy-info's form: hours (not wrapped at 24):minutes:seconds. */
export function formatTimeLeft(seconds: number): string {
  const s = Math.max(0, seconds);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${Math.floor(s / 3600)}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

export function describeProxy(info: ProxyFileInfo, file: string, now: Date): string[] {
  const left = (d: Date) => Math.floor((d.getTime() - now.getTime()) / 1000);
  const line = (k: string, v: string) => `${k.padEnd(10)}: ${v}`;
  const out = [
    line("subject", info.subject),
    line("issuer", info.issuer),
    line("identity", info.identity),
    line("type", info.type),
    line("strength", `${info.bits} bits`),
    line("path", file),
    line("timeleft", formatTimeLeft(left(info.notAfter))),
  ];
  if (!info.hasPrivateKey) out.push(line("warning", "the file holds no private key"));
  else if (!info.keyMatches) out.push(line("warning", "the private key does not belong to the proxy certificate"));
  for (const ac of info.voms) {
    out.push(`=== VO ${ac.vo} extension information ===`);
    out.push(line("VO", ac.vo));
    out.push(line("issuer", ac.issuer));
    for (const fqan of ac.fqans) out.push(line("attribute", fqan));
    out.push(line("validity", `${ac.notBefore.toISOString()} - ${ac.notAfter.toISOString()}`));
    out.push(line("timeleft", formatTimeLeft(left(ac.notAfter))));
    out.push(line("uri", ac.policyAuthority.replace(/^[^:]+:\/\//, "")));
  }
  return out;
}

export function main(argv: string[]): number {
  try {
    const o = parseProxyInfoArgs(argv, proxyToolEnvironment());
    if (o === "help") {
      process.stdout.write(`${PROXY_INFO_USAGE}\n`);
      return 0;
    }
    const check = o.exists || o.validSeconds !== undefined;
    let pem: string;
    try {
      pem = fs.readFileSync(o.file, "utf8");
    } catch (e) {
      if (check) return 1;
      throw new ProxyFileError(`cannot read ${o.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    let info: ProxyFileInfo;
    try {
      info = inspectProxyFile(pem);
    } catch (e) {
      if (check) return 1;
      throw new ProxyFileError(`${o.file}: ${(e as Error).message}`);
    }
    const secondsLeft = Math.floor((info.notAfter.getTime() - Date.now()) / 1000);
    if (check) return info.keyMatches && secondsLeft > 0 && secondsLeft >= (o.validSeconds ?? 0) ? 0 : 1;
    if (o.timeleft) {
      process.stdout.write(`${Math.max(0, secondsLeft)}\n`);
      return 0;
    }
    if (o.fqan) {
      // voms-proxy-info -fqan: every AC's FQANs in order; nothing and status 1 without an AC.
      const fqans = info.voms.flatMap((ac) => ac.fqans);
      if (fqans.length === 0) {
        process.stderr.write(`${NAME}: ${o.file} carries no VOMS attributes\n`);
        return 1;
      }
      process.stdout.write(`${fqans.join("\n")}\n`);
      return 0;
    }
    process.stdout.write(`${describeProxy(info, o.file, new Date()).join("\n")}\n`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${NAME}: ${e.message}\n${PROXY_INFO_USAGE.split("\n")[0]}\n`);
      return 2;
    }
    process.stderr.write(`${NAME}: ${e instanceof ProxyFileError ? e.message : `unexpected error: ${(e as Error).message}`}\n`);
    return 1;
  }
}
