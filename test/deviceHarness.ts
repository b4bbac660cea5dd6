/**
 * Driving certbridge-proxy-init in tests: run it as a child process, read the
 * login URL and code it prints, and approve the login the way a person would
 * (test/portalHarness.ts Browser: code page, confirmation, development IdP,
 * consent). The Playwright test does the same in Chromium.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { Browser } from "./portalHarness";
import { ROOT } from "./helpers";

export const PROXY_INIT = path.join(ROOT, "bin/certbridge-proxy-init.mjs");
export const PROXY_INFO = path.join(ROOT, "bin/certbridge-proxy-info.mjs");

export interface CliProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit status. */
  exited: Promise<number>;
  /** Resolves when stdout or stderr (as selected) matches. */
  waitFor: (re: RegExp, stream?: "stdout" | "stderr") => Promise<RegExpMatchArray>;
}

export function startCli(bin: string, args: string[], env: Record<string, string> = {}, cwd = ROOT): CliProcess {
  const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  const waiters: { re: RegExp; stream: "stdout" | "stderr"; resolve: (m: RegExpMatchArray) => void; reject: (e: Error) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const m = out[w.stream].match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout!.on("data", (d: Buffer) => ((out.stdout += d.toString()), check()));
  child.stderr!.on("data", (d: Buffer) => ((out.stderr += d.toString()), check()));
  const exited = new Promise<number>((resolve) =>
    child.once("exit", (code) => {
      for (const w of waiters.splice(0)) w.reject(new Error(`the CLI exited (${code}) before printing ${w.re}:\nstdout: ${out.stdout}\nstderr: ${out.stderr}`));
      resolve(code ?? 1);
    }),
  );
  return {
    child,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    exited,
    waitFor: (re, stream = "stdout") =>
      new Promise((resolve, reject) => {
        const m = out[stream].match(re);
        if (m) return resolve(m);
        if (child.exitCode !== null) return reject(new Error(`the CLI has exited (${child.exitCode}) without printing ${re}:\nstdout: ${out.stdout}\nstderr: ${out.stderr}`));
        waiters.push({ re, stream, resolve, reject });
      }),
  };
}

/** The login URL and user code certbridge-proxy-init prints. */
export async function loginPrompt(cli: CliProcess): Promise<{ url: string; userCode: string }> {
  const m = await cli.waitFor(/^\s+(http\S+\/oidc\/device\?user_code=\S+)\s*$[\s\S]*?shows the code\s+([A-Z]{4}-[A-Z]{4})/m);
  return { url: m[1]!, userCode: m[2]! };
}

function hiddenFields(html: string, formId: string): Record<string, string> {
  const form = new RegExp(`<form[^>]*id="${formId.replace(/\./g, "\\.")}"[\\s\\S]*?</form>`).exec(html)?.[0];
  if (!form) throw new Error(`no form ${formId} in:\n${html.slice(0, 2000)}`);
  const fields: Record<string, string> = {};
  for (const m of form.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[m[1]!] = m[2]!;
  return fields;
}

/** Approve a terminal login as `user`: the code page, its confirmation, sign-in, consent. Returns the consent page's HTML. */
export async function approveDeviceLogin(url: string, opts: { user?: string; decision?: "allow" | "deny"; browser?: Browser } = {}): Promise<{ consentHtml: string; confirmHtml: string; finalHtml: string }> {
  const browser = opts.browser ?? new Browser();
  // verification_uri_complete answers with a self-submitting form (oidc-provider's form_post)
  let page = await browser.go(url);
  const action = /<form[^>]*action="([^"]+)"/.exec(page.html)?.[1];
  if (!action) throw new Error(`no code form at ${url}:\n${page.html.slice(0, 2000)}`);
  const fields: Record<string, string> = {};
  for (const m of page.html.matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[m[1]!] = m[2]!;
  page = await browser.go(new URL(action.replace(/&amp;/g, "&"), url).href, { method: "POST", form: fields });
  const confirmHtml = page.html;
  page = await browser.go(new URL("/oidc/device", url).href, { method: "POST", form: hiddenFields(page.html, "op.deviceConfirmForm") });
  if (/Continue to sign in/.test(page.html)) {
    page = await browser.submit(page, /\/login$/, {});
    page = await browser.submit(page, /\/dev-idp\/interaction\/.+\/login$/, { sub: opts.user ?? "alice" });
  }
  const consentHtml = page.html;
  if (!/Allow/.test(consentHtml)) throw new Error(`expected the consent page, got ${page.status} at ${page.url}:\n${page.html.slice(0, 3000)}`);
  page = await browser.submit(page, /\/confirm$/, { decision: opts.decision ?? "allow" });
  return { consentHtml, confirmHtml, finalHtml: page.html };
}
