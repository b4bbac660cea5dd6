/**
 * What the console features share: the request a mutation's route hands over, form parsing
 * with zod, and how an administrator is named in the audit trail.
 */
import { z } from "zod";
import { invalidRequest } from "../errors";
import { parseDuration } from "../duration";
import { openSealedKey, sealKey } from "../pki/seal";
import type { Viewer } from "./gate";

/** What a mutation's route handler hands over: who, from where, with which form. */
export interface FormRequest {
  cookie: string;
  /** The Origin header (or Referer's origin); must be this portal's. */
  origin: string | null;
  ip: string | null;
  form: URLSearchParams;
}

export const DAY = 86400_000;
export const reasonField = z.string().trim().min(3, "say why (at least 3 characters): it goes into the audit log").max(500);

export const text = (max: number) => z.string().trim().max(max);
export const optionalText = (max: number) =>
  text(max)
    .optional()
    .transform((s) => (s ? s : undefined));

export function parseForm<T extends z.ZodType>(schema: T, form: URLSearchParams, arrays: readonly string[] = []): z.infer<T> {
  const raw: Record<string, unknown> = {};
  for (const key of new Set(form.keys())) raw[key] = arrays.includes(key) ? form.getAll(key) : form.get(key);
  for (const key of arrays) raw[key] ??= [];
  const r = schema.safeParse(raw);
  if (!r.success) throw invalidRequest(r.error.issues.map((i) => `${i.path.join(".") || "form"}: ${i.message}`).join("; "));
  return r.data;
}

export function lifetimeSeconds(textValue: string, field: string): number {
  try {
    return parseDuration(textValue);
  } catch (e) {
    throw invalidRequest(`${field}: ${(e as Error).message}`);
  }
}

/** An administrator in the audit trail: the actor id, and a name people recognise. */
export function adminActor(viewer: Viewer) {
  return { actor: `admin:${viewer.identity.id}`, by: `${viewer.identity.displayName} (${viewer.identity.sub})` };
}

/**
 * What a console form keeps across a refused submission (Post/Redirect/Get without the error in
 * the URL): the message, the field it concerns, and what was typed. It travels in a sealed
 * one-shot cookie that the server entry hands to the next page view and deletes in the same
 * response (server.ts), so a reload shows the clean form.
 */
export const FORM_FLASH_COOKIE = "certbridge_form";
/** The request header the server entry moves the cookie's value into. */
export const FORM_FLASH_HEADER = "x-certbridge-form";
const FORM_FLASH_CONTEXT = "certbridge:form-flash";
/** Never carried back: the CSRF token is the page's own, confirmations must be given again. */
const NOT_KEPT = new Set(["csrf", "confirm", "acknowledge"]);

export interface FormFlash {
  /** The page the form is on; another page ignores the flash. */
  path: string;
  error: string;
  /** The form field the error is about, when it names one. */
  field: string | null;
  values: Record<string, string[]>;
}

const formFlashShape = z.object({ path: z.string(), error: z.string(), field: z.string().nullable(), values: z.record(z.string(), z.array(z.string())), at: z.number() });

export class FormMemory {
  constructor(
    private readonly kek: Buffer,
    private readonly secure: boolean,
  ) {}

  /** The one-shot cookie for a refused form: which field (from "field: message" or `field`), and the values typed. */
  remember(path: string, error: string, form: URLSearchParams, field?: string): { name: string; value: string; path: string; maxAge: number; secure: boolean } {
    // the first "name: " or "name.0: " in the message that is one of the form's fields (camelCase as snake_case)
    // (a message that starts with a name that is not in the form, e.g. an unticked box, is about that field)
    const names = [...error.matchAll(/(?:^|: |; )([a-z][A-Za-z_]*)(?:\.\d+)?: /g)].map((m) => m[1]!.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
    const named = names.find((name) => form.has(name)) ?? /^([a-z_]+): /.exec(error)?.[1];
    const values: Record<string, string[]> = {};
    let size = 0;
    for (const key of new Set(form.keys())) {
      if (NOT_KEPT.has(key)) continue;
      const all = form.getAll(key).map((v) => v.slice(0, 4000));
      size += all.reduce((n, v) => n + v.length, 0);
      values[key] = all;
    }
    const flash = { path, error, field: named ?? field ?? null, values: size > 6000 ? {} : values, at: Date.now() };
    return { name: FORM_FLASH_COOKIE, value: sealKey(this.kek, Buffer.from(JSON.stringify(flash)), FORM_FLASH_CONTEXT), path: "/", maxAge: 120, secure: this.secure };
  }

  /** The flash for `path`, if the server entry handed one over with this request. */
  recall(headerValue: string | null, path: string): FormFlash | null {
    if (!headerValue) return null;
    try {
      const f = formFlashShape.parse(JSON.parse(Buffer.from(openSealedKey(this.kek, headerValue, FORM_FLASH_CONTEXT)).toString("utf8")));
      if (f.path !== path || Date.now() - f.at > 120_000) return null;
      return { path: f.path, error: f.error, field: f.field, values: f.values };
    } catch {
      return null;
    }
  }
}
