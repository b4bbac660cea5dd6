/**
 * A throwaway SoftHSM2 token for tests: its own config (SOFTHSM2_CONF) whose
 * tokendir is a temp dir, initialised with softhsm2-util. Nothing touches
 * the machine's /var/lib/softhsm.
 */
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { tempDir } from "./helpers";

export const SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so";
export const haveSoftHsm = fs.existsSync(SOFTHSM_MODULE);

export interface SoftToken {
  dir: string;
  conf: string;
  label: string;
  pin: string;
  /** Environment for a child process (and for this one, before the module is first loaded). */
  env: Record<string, string>;
  cleanup: () => void;
}

/** A SoftHSM2 configuration in a temp dir; add tokens with `addToken`. */
export function softHsm(): { dir: string; conf: string; addToken: (label: string, pin: string) => void; cleanup: () => void } {
  const dir = tempDir("certbridge-softhsm-");
  const tokens = path.join(dir, "tokens");
  fs.mkdirSync(tokens);
  const conf = path.join(dir, "softhsm2.conf");
  fs.writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  return {
    dir,
    conf,
    addToken(label, pin) {
      execFileSync("softhsm2-util", ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", `so-${pin}`], {
        env: { ...process.env, SOFTHSM2_CONF: conf },
        stdio: "pipe",
      });
    },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
