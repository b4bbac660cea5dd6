/**
 * The certificate subject of a federated person: a stable, printable DN made
 * from verified OIDC claims, following the RCauth Delegation Server's scheme
 * so that the DNs look like the ones grid services already know.
 *
 * Rules
 * -----
 * Subject:      <policy.base> / O=<organisation> / CN=<name> <USR>[ <seq>]
 *               e.g. /DC=eu/DC=rcauth/DC=rcauth-clients/O=EGI Foundation/CN=Nicolas Liampotis 7ewsApjEZsBcCLz-
 *
 * Identifier:   the `eduperson_unique_id` claim when present, else "<iss> <sub>"
 *               (issuer, one space, subject). `iss` is a URL and must contain no
 *               whitespace, so the first space always separates the two parts and
 *               the pair is unambiguous even when `sub` contains spaces.
 *               `eduperson_unique_id` ("uniqueID@scope") must contain no
 *               whitespace either, so an eduPersonUniqueId can never equal an
 *               "<iss> <sub>" pair. eduPersonUniqueId is global and never
 *               reassigned, so the same person arriving through two issuers gets
 *               the same subject; that means every trusted issuer is trusted to
 *               assert it truthfully. The identifier is hashed exactly as
 *               received (no case folding or Unicode normalisation): it is opaque.
 *
 * <USR>:        the first 16 characters of standard base64 of SHA-256 over the
 *               UTF-8 identifier, with "/" and "+" replaced by "-" (base64 would
 *               otherwise put "/" into the CN, which the slash form cannot carry).
 *               Test vector: "user@example.org" -> "0VnvYk7YZpe08fP-".
 *
 * <name>:       the `name` claim; else `given_name` and `family_name` joined by a
 *               space (either one alone is accepted: mononymous people exist);
 *               else the request fails with "missing claim: name". A claim that is
 *               empty or only whitespace counts as absent.
 *
 * <organisation>: the `idp_name` claim, else policy.defaultOrganisation.
 *
 * Printable form (applied to name and organisation):
 *   1. transliterate to ASCII: a table for letters Unicode does not decompose
 *      (ł→l, ø→o, đ→d, ß→ss, æ→ae, œ→oe, þ→th, ð→d, ı→i, ...), curly and other
 *      apostrophe-like quotes → ', typographic dashes → -; then NFKD and drop
 *      combining marks (é→e, ü→u, ﬁ→fi, fullwidth Ａ→A);
 *   2. drop invisible format characters (soft hyphen, zero-width space/joiner,
 *      bidi controls): they carry no letters, and turning them into X would
 *      make a name look different from what the person sees;
 *   3. every whitespace character (tab, newline, no-break space, ...) becomes a
 *      space;
 *   4. every remaining character outside [A-Za-z0-9 '()+,-.?@] becomes "X", one
 *      X per code point (Greek, Cyrillic, CJK and emoji become X's). "/", "=",
 *      ":", "\" and '"' are deliberately outside the set: "/" and "=" would break
 *      the slash form, the others confuse DN string forms and config files;
 *   5. runs of spaces collapse to one space; leading/trailing spaces go.
 *   A name that is empty after this is a missing claim.
 *
 * Lengths (after printable(), so everything is ASCII and bytes = characters):
 *   name at most 43, O at most 64, whole CN at most 64. An over-long value is
 *   cut to (limit - 3) characters, trailing spaces are removed, and "..." is
 *   appended. 64 is the X.520 upper bound for O and CN (RFC 5280 ub-*-name);
 *   43 = 64 - " " - 16 (USR) - " " - 3 (largest sequence), so the CN limit holds
 *   by construction and is only asserted.
 *
 * Collisions: if the same CN is later produced for a different person (e.g. a
 *   reassigned identifier or a truncated-name clash — the USR part makes this
 *   rare), the caller, which sees the database, passes `sequence` (1..999) and
 *   the CN becomes "<name> <USR> <seq>". This module never decides that itself.
 *
 * This module is pure: no I/O, no clock. Claims are treated as untrusted input
 * and validated with zod even though the token was verified: a verified token
 * only proves who sent the claims, not that they are well-formed.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { CertbridgeError, invalidConfig, invalidRequest } from "../errors";
import { formatSlashDn, parseSlashDn, type Rdn } from "../pki/dn";

export interface SubjectPolicy {
  /** Slash-form DN prefix, e.g. "/DC=eu/DC=rcauth/DC=rcauth-clients". */
  base: string;
  /** O= value when the token carries no usable `idp_name`. */
  defaultOrganisation: string;
}

export interface VerifiedClaims {
  iss: string;
  sub: string;
  name?: string;
  given_name?: string;
  family_name?: string;
  eduperson_unique_id?: string;
  idp_name?: string;
  /* others allowed */
  [k: string]: unknown;
}

export interface Subject {
  /** base RDNs, then O, then CN (most significant first, as in the slash form). */
  rdns: Rdn[];
  /** slash form of `rdns` */
  dn: string;
  commonName: string;
  organisation: string;
  /** the stable identifier the USR part was computed from */
  identifier: string;
}

export const NAME_MAX = 43;
export const ORGANISATION_MAX = 64;
export const COMMON_NAME_MAX = 64;
export const SEQUENCE_MAX = 999;
const SUFFIX_LENGTH = 16;

// ---------------------------------------------------------------------------
// Claim validation

/** A lone UTF-16 surrogate would be encoded as U+FFFD, so two different strings could hash alike. */
const wellFormed = (s: string) => !/\p{Cs}/u.test(s);

/** Identifier parts: the "<iss> <sub>" encoding and its disjointness from eduPersonUniqueId rely on these rules. */
const claimsSchema = z.object({
  iss: z
    .string()
    .min(1)
    .regex(/^\S+$/, "must not contain whitespace")
    .refine(wellFormed, "must be well-formed Unicode"),
  sub: z.string().min(1).refine(wellFormed, "must be well-formed Unicode"),
  // Optional claims: null is how some IdPs say "absent"; any other non-string is malformed.
  eduperson_unique_id: z
    .string()
    .regex(/^\S*$/, "must not contain whitespace")
    .refine(wellFormed, "must be well-formed Unicode")
    .nullish(),
  name: z.string().nullish(),
  given_name: z.string().nullish(),
  family_name: z.string().nullish(),
  idp_name: z.string().nullish(),
});
type ParsedClaims = z.infer<typeof claimsSchema>;

const isBlank = (v: unknown) => v === undefined || v === null || (typeof v === "string" && v.trim() === "");

/** Validate untrusted claims; every failure names the claim. */
function parseClaims(claims: unknown): ParsedClaims {
  const result = claimsSchema.safeParse(claims);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const claim = issue?.path[0];
  if (typeof claim !== "string") throw invalidRequest("invalid claims: expected a JSON object");
  const raw = (claims as Record<string, unknown>)[claim];
  // Absent, null or empty required claims are "missing"; wrong types and bad contents are "invalid".
  if (isBlank(raw)) throw invalidRequest(`missing claim: ${claim}`);
  const reason = typeof raw === "string" ? (issue?.message ?? "malformed") : "must be a string";
  throw invalidRequest(`invalid claim: ${claim} (${reason})`);
}

/** A present, non-blank optional claim, else undefined. */
const present = (v: string | null | undefined): string | undefined => (v == null || v.trim() === "" ? undefined : v);

// ---------------------------------------------------------------------------
// Identifier and USR

/**
 * The stable identifier of a person: `eduperson_unique_id` when present
 * (global and never reassigned, so it survives a change of proxy/issuer), else
 * "<iss> <sub>". `iss` is validated to contain no whitespace (it is a URL), so
 * the single space unambiguously separates issuer from subject; and because
 * eduPersonUniqueId may not contain whitespace, the two forms never coincide.
 */
export function stableIdentifier(claims: VerifiedClaims): string {
  return identifierOf(parseClaims(claims));
}

function identifierOf(c: ParsedClaims): string {
  return present(c.eduperson_unique_id) ?? `${c.iss} ${c.sub}`;
}

/**
 * The RCauth "USR" part: first 16 characters of standard base64 of
 * SHA-256(UTF-8 identifier), "/" and "+" replaced by "-" ("/" cannot appear in
 * a slash-form DN value; "+" becomes "-" as well to match RCauth's DNs).
 */
export function identifierSuffix(identifier: string): string {
  const digest = createHash("sha256").update(identifier, "utf8").digest("base64");
  return digest.slice(0, SUFFIX_LENGTH).replace(/[/+]/g, "-");
}

// ---------------------------------------------------------------------------
// Printable form

/**
 * Letters and punctuation that NFKD leaves alone (they are letters in their own
 * right, not letter + accent) or that it would turn into something worse
 * (´ decomposes to space + combining acute).
 */
const TRANSLITERATION: Readonly<Record<string, string>> = {
  ł: "l", Ł: "L", ø: "o", Ø: "O", đ: "d", Đ: "D", ð: "d", Ð: "D",
  ß: "ss", ẞ: "SS", æ: "ae", Æ: "AE", œ: "oe", Œ: "OE", þ: "th", Þ: "Th",
  ı: "i", ħ: "h", Ħ: "H", ŧ: "t", Ŧ: "T", ŋ: "ng", Ŋ: "Ng", ə: "e", Ə: "E", ĸ: "k",
  // apostrophes and quotes (O’Brien, N‘Dour, Hawaiʻi): all become the ASCII apostrophe
  "\u2018": "'", "\u2019": "'", "\u201A": "'", "\u201B": "'",
  "\u201C": "'", "\u201D": "'", "\u201E": "'", "\u201F": "'",
  "\u2032": "'", "\u02BC": "'", "\u02BB": "'", "\u02B9": "'", "`": "'", "\u00B4": "'",
  // dashes and hyphens (double-barrelled names typed in word processors); middle dot (Catalan l·l)
  "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
  "\u00B7": ".",
};

const transliterate = (s: string) => Array.from(s, (ch) => TRANSLITERATION[ch] ?? ch).join("");

/**
 * ASCII-only, DN-safe form of display text (rules in the header comment).
 * The result may be empty; callers decide whether that is an error.
 */
export function printable(text: string): string {
  // Table first (´ must not be decomposed), then NFKD and mark stripping, then
  // the table again for characters NFKD produced (e.g. ŉ → ʼn, ‑ → ‐).
  const ascii = transliterate(transliterate(text).normalize("NFKD").replace(/\p{M}/gu, ""));
  return ascii
    .replace(/\p{Cf}/gu, "") // invisible format characters
    .replace(/\s/gu, " ")
    .replace(/[^A-Za-z0-9 '()+,\-.?@]/gu, "X") // u flag: one X per code point, not per UTF-16 unit
    .replace(/ {2,}/g, " ")
    .trim();
}

/** Cut an ASCII value to `max` characters, marking the cut with "...". */
function truncate(value: string, max: number): string {
  if (value.length <= max) return value;
  return `${value.slice(0, max - 3).trimEnd()}...`;
}

// ---------------------------------------------------------------------------
// Subject

function displayName(c: ParsedClaims): string {
  const name = printable(present(c.name) ?? "");
  if (name !== "") return name;
  const parts = [c.given_name, c.family_name].map((p) => printable(present(p) ?? ""));
  const joined = parts.filter((p) => p !== "").join(" ");
  if (joined !== "") return joined;
  // Only reached when there is no name claim or it was blank after printable() (e.g. only whitespace or invisible characters).
  throw invalidRequest("missing claim: name (or given_name/family_name)");
}

function parseBase(base: string): Rdn[] {
  try {
    return parseSlashDn(base);
  } catch (e) {
    throw invalidConfig(`subject base "${base}" is not a slash-form DN: ${(e as Error).message}`, e);
  }
}

/**
 * The subject for a person. `sequence` (1..999) is passed by the caller only
 * when the plain CN is already held by a different person.
 */
export function subjectFromClaims(claims: VerifiedClaims, policy: SubjectPolicy, sequence?: number): Subject {
  if (sequence !== undefined && !(Number.isInteger(sequence) && sequence >= 1 && sequence <= SEQUENCE_MAX)) {
    // A caller bug, not a bad request: the caller computes the sequence.
    throw new RangeError(`subject sequence must be an integer 1..${SEQUENCE_MAX}, got ${sequence}`);
  }
  const c = parseClaims(claims);
  const identifier = identifierOf(c);

  const name = truncate(displayName(c), NAME_MAX);
  const parts = [name, identifierSuffix(identifier)];
  if (sequence !== undefined) parts.push(String(sequence));
  const commonName = parts.join(" ");
  if (commonName.length > COMMON_NAME_MAX) {
    // Cannot happen (43 + 1 + 16 + 1 + 3 = 64); kept so a future change to the limits fails loudly.
    throw new CertbridgeError("server_error", `common name exceeds ${COMMON_NAME_MAX} characters`);
  }

  // The organisation also passes printable(): the configured default is free text too, and
  // a "/" or "=" in it would corrupt the slash form just as one in idp_name would.
  const idpName = printable(present(c.idp_name) ?? "");
  const organisation = truncate(idpName !== "" ? idpName : printable(policy.defaultOrganisation), ORGANISATION_MAX);
  if (organisation === "") throw invalidConfig("default organisation is empty after printable()");

  const rdns: Rdn[] = [...parseBase(policy.base), { type: "O", value: organisation }, { type: "CN", value: commonName }];
  return { rdns, dn: formatSlashDn(rdns), commonName, organisation, identifier };
}
