/**
 * What the console features share: the request a mutation's route hands over, form parsing
 * with zod, and how an administrator is named in the audit trail.
 */
import { z } from "zod";
import { invalidRequest } from "../errors";
import { parseDuration } from "../duration";
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
