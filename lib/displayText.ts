/**
 * Names that strangers choose (a person's `name` claim from the IdP, a gateway's registered name)
 * shown on pages people act on: the consent and device confirmation pages, the consoles. Such a
 * name must not be able to reorder the text around it (Unicode bidirectional overrides and
 * isolates, UAX #9 — "Trojan Source", CVE-2021-42574), hide characters (other format controls),
 * break lines, or push the page's own words off screen by its length.
 *
 * Removed: control characters (Cc), format characters (Cf: bidi controls, invisible operators,
 * soft hyphen, BOM) except ZWNJ/ZWJ (U+200C/U+200D, which Persian, Indic scripts and emoji
 * sequences need), line/paragraph separators, private-use and unpaired surrogates. Runs of white
 * space become one space. The result is cut to `max` code points, the cut marked with "…".
 * Applied where names are stored and again where they are shown (older rows predate the rule).
 */
export const DISPLAY_NAME_MAX = 100;

const HIDDEN = /(?![\u200c\u200d])[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/gu;

export function displayText(value: string, max = DISPLAY_NAME_MAX): string {
  const cleaned = value.normalize("NFC").replace(HIDDEN, " ").replace(/\s+/gu, " ").trim();
  const points = [...cleaned];
  if (points.length <= max) return cleaned;
  return `${points.slice(0, max - 1).join("").trimEnd()}…`;
}
