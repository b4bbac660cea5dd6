/**
 * HTTP Basic client authentication (RFC 6749 §2.3.1): the client id and secret are each
 * form-urlencoded, then joined with ":" and base64-encoded. One decoder for every endpoint that
 * accepts it (/getproxy, renewal-info, the compatibility profile, public clients' empty secrets);
 * each decides what a malformed header means for its own transport.
 */
export interface BasicCredentials {
  clientId: string;
  clientSecret: string;
}

/** The credentials of a Basic header; null when the header is absent or another scheme; "malformed" when it is Basic but undecodable. */
export function parseBasicCredentials(header: string | null | undefined): BasicCredentials | "malformed" | null {
  const h = header?.trim() ?? "";
  if (!/^basic\s/i.test(h)) return null;
  const m = /^basic\s+([A-Za-z0-9+/_-]+=*)$/i.exec(h);
  if (!m) return "malformed";
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return "malformed";
  try {
    const part = (s: string) => decodeURIComponent(s.replace(/\+/g, " "));
    return { clientId: part(decoded.slice(0, colon)), clientSecret: part(decoded.slice(colon + 1)) };
  } catch {
    return "malformed";
  }
}
