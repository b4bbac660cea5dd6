/**
 * What certbridge-proxy-init keeps on disk:
 * - the proxy file: made from a key generated here (it never leaves this
 *   machine) and the portal's answer to a CSR;
 * - the refresh-token file (--refresh-token-file): JSON with the portal, the
 *   client and the newest refresh token. It is a credential: mode 0600,
 *   written atomically, refused when others can read it.
 * - a lock next to it, so two renewers (an overlapping cron run) never spend
 *   the same refresh token: the portal takes a reused token for a stolen one
 *   and revokes the whole grant.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import { z } from "zod";
import { formatDuration } from "../../../lib/duration";
import { writeFileAtomic } from "../../../lib/files";
import { SoftwareKey } from "../../../lib/pki/custody";
import { createCsr } from "../../../lib/pki/csr";
import { assembleProxyFile, inspectProxyFile, type ProxyFileInfo } from "../../../lib/inspect/proxyFile";
import type { PortalClient } from "./portalClient";

export const PROXY_KEY_BITS = 2048;

/** A problem that retrying cannot fix: stop with this message. */
export class CredentialError extends Error {}

const storedToken = z.object({
  version: z.literal(1),
  portal: z.url({ protocol: /^https?$/ }),
  client_id: z.string().min(1),
  refresh_token: z.string().min(1),
  saved_at: z.iso.datetime(),
});
export type StoredRefreshToken = z.infer<typeof storedToken>;

export function readRefreshTokenFile(file: string): StoredRefreshToken {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new CredentialError(`no refresh token in ${file}: log in first with certbridge-proxy-init --refresh-token-file ${file}`);
  }
  if ((stat.mode & 0o077) !== 0) throw new CredentialError(`${file} is readable by others (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 it, and log in again if it may have leaked`);
  const r = storedToken.safeParse((() => {
    try {
      return JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
      return undefined;
    }
  })());
  if (!r.success) throw new CredentialError(`${file} is not a certbridge-proxy-init refresh-token file`);
  return r.data;
}

export function writeRefreshTokenFile(file: string, t: Omit<StoredRefreshToken, "version" | "saved_at">): void {
  const record: StoredRefreshToken = { version: 1, ...t, saved_at: new Date().toISOString() };
  writeFileAtomic(file, `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

/** The proxy in `file`, or null when it is missing or unreadable (then it is due for renewal). */
export function readProxyFile(file: string): ProxyFileInfo | null {
  try {
    return inspectProxyFile(fs.readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

/** A fresh RSA key, a CSR for it, /getproxy, and the proxy file written atomically with mode 0600. */
export async function obtainProxy(
  client: PortalClient,
  accessToken: string,
  opts: { out: string; lifetimeSeconds?: number; voms: string[] },
): Promise<{ info: ProxyFileInfo; clamped: boolean }> {
  const key = await SoftwareKey.generate(PROXY_KEY_BITS);
  const csr = await createCsr(key);
  const issued = await client.getProxy(accessToken, csr.pem, { lifetimeSeconds: opts.lifetimeSeconds, voms: opts.voms });
  const privateKey = crypto.createPrivateKey({ key: Buffer.from(key.exportPkcs8()), format: "der", type: "pkcs8" });
  const pem = assembleProxyFile(issued.pem, privateKey);
  writeFileAtomic(opts.out, pem, 0o600);
  return { info: inspectProxyFile(pem), clamped: issued.clamped };
}

/**
 * An exclusive lock file holding our pid, created with O_EXCL. A lock left by
 * a process that no longer runs (a crash, a reboot) is taken over.
 */
export function acquireLock(file: string): () => void {
  const lock = `${file}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(lock, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => fs.rmSync(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = Number(fs.readFileSync(lock, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && isRunning(pid)) {
        throw new CredentialError(`another certbridge-proxy-init (pid ${pid}) is renewing with ${file} (lock ${lock})`);
      }
      fs.rmSync(lock, { force: true }); // stale
    }
  }
  throw new CredentialError(`cannot take the lock ${lock}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Warnings for VOMS attributes that end before the proxy does (the VO caps its AC lifetime). */
export function shortAcWarnings(info: ProxyFileInfo, now = Date.now()): string[] {
  const out: string[] = [];
  for (const ac of info.voms) {
    const shortBy = Math.floor((info.notAfter.getTime() - ac.notAfter.getTime()) / 1000);
    if (shortBy <= 60) continue;
    const acLeft = Math.max(0, Math.floor((ac.notAfter.getTime() - now) / 1000));
    out.push(
      `warning: the VOMS attributes of ${ac.vo} end at ${ac.notAfter.toISOString()} (in ${formatDuration(acLeft)}), ${formatDuration(shortBy)} before the proxy: ` +
        `after that, services that need ${ac.vo} membership refuse the proxy (the VO limits its attributes' lifetime; ask for --valid ${formatDuration(acLeft)} or renew)`,
    );
  }
  return out;
}
