/**
 * Writing credential files. A proxy file must never exist half-written or
 * with loose permissions, even for an instant (Globus refuses anything looser
 * than 0600, and a world-readable proxy is a stolen identity): write a
 * temporary file with the final mode in the same directory, then rename.
 *
 * - The temporary file is created with O_EXCL and its final mode, so it is
 *   never readable by others and never an existing file (or symlink) an
 *   attacker planted.
 * - fsync before rename: after a crash the target holds the old or the new
 *   content, never a prefix of the new one.
 * - rename(2) within one directory is atomic: readers see the old file or the
 *   new one.
 * - fsync of the directory after rename makes the rename itself durable. The
 *   renewer relies on that: a rotated refresh token that only lived in the
 *   page cache would be lost in a power cut, and the old one is already spent.
 * - On any error the temporary file is removed and the target is untouched.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

export function writeFileAtomic(file: string, data: string | Uint8Array, mode: number): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = temporaryName(file);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    try {
      fs.fchmodSync(fd, mode); // exactly `mode`, whatever the umask
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDirectory(dir);
}

/**
 * Create `file` with `data`, durably and only if it does not exist yet (first start's key and
 * certificate files): the content is written and fsynced under a temporary name, then linked to
 * the final name — link(2) fails when the name exists, so two processes racing cannot both win,
 * and a crash leaves either no file or the whole file, never a prefix (only a `.tmp` file, which
 * `removeStaleTemporaries` clears on the next start).
 */
export function writeFileExclusive(file: string, data: string | Uint8Array, mode: number): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = temporaryName(file);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    try {
      fs.fchmodSync(fd, mode);
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.linkSync(tmp, file); // EEXIST when another process made it first
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  syncDirectory(dir);
}

const temporaryName = (file: string) => path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${crypto.randomBytes(6).toString("hex")}.tmp`);

/** Remove temporary files an interrupted write of `file` left behind; returns their names. */
export function removeStaleTemporaries(file: string): string[] {
  const dir = path.dirname(path.resolve(file));
  const prefix = `.${path.basename(file)}.`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const stale = names.filter((n) => n.startsWith(prefix) && /^\.[^/]+\.[0-9a-f]{12}\.tmp$/.test(n));
  for (const n of stale) fs.rmSync(path.join(dir, n), { force: true });
  return stale;
}

function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY);
    fs.fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on a directory; the rename has still happened.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
