/**
 * The client's IP address for the audit trail, the limits and the device
 * page ("the request came from"). `X-Forwarded-For` is believed only as far
 * as it was written by proxies the operator trusts (CERTBRIDGE_TRUSTED_PROXIES):
 * starting from the socket's peer, each trusted hop hands over to the address
 * it reports, and the right-most address that is not a trusted proxy is the
 * client. Everything left of it was written by the client and is ignored
 * (the left-most entry, which a client can forge, is never used as such).
 */
import net from "node:net";

export class TrustedProxies {
  private readonly list = new net.BlockList();
  readonly cidrs: string[];

  /** `cidrs`: "10.0.0.0/8", "2001:db8::/32", or single addresses. Throws on a malformed entry (config validation). */
  constructor(cidrs: readonly string[]) {
    this.cidrs = [...cidrs];
    for (const c of cidrs) {
      const [addr, prefixText] = c.split("/");
      const ip = normalizeIp(addr ?? "");
      const type = net.isIP(ip);
      if (!type) throw new Error(`"${c}" is not an IP address or CIDR block`);
      const max = type === 4 ? 32 : 128;
      const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
      if (!(prefix >= 0 && prefix <= max)) throw new Error(`"${c}" has an invalid prefix length (0–${max})`);
      this.list.addSubnet(ip, prefix, type === 4 ? "ipv4" : "ipv6");
    }
  }

  /** Answers by address, kept: every request asks about its peer, and peers are few (bounded all the same). */
  private readonly known = new Map<string, boolean>();

  has(ip: string): boolean {
    if (this.cidrs.length === 0) return false;
    const hit = this.known.get(ip);
    if (hit !== undefined) return hit;
    const a = normalizeIp(ip);
    const type = net.isIP(a);
    const trusted = type !== 0 && this.list.check(a, type === 4 ? "ipv4" : "ipv6");
    if (this.known.size >= 4096) this.known.clear();
    this.known.set(ip, trusted);
    return trusted;
  }
}

/** "::ffff:192.0.2.1" (a v4 peer on a dual-stack socket) → "192.0.2.1"; "[2001:db8::1]" → "2001:db8::1". */
export function normalizeIp(ip: string): string {
  let s = ip.trim();
  if (s.startsWith("[") && s.includes("]")) s = s.slice(1, s.indexOf("]"));
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  return mapped ? mapped[1]! : s;
}

/**
 * The client address: `peer` is the socket's remote address, `forwardedFor` the X-Forwarded-For
 * header (several headers joined by commas, as Node does). Only a trusted peer's header is read.
 */
export function clientIpOf(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: TrustedProxies): string {
  let current = normalizeIp(peer ?? "");
  const header = Array.isArray(forwardedFor) ? forwardedFor.join(",") : (forwardedFor ?? "");
  const hops = header.split(",").map((h) => h.trim()).filter(Boolean);
  while (trusted.has(current) && hops.length) {
    const next = normalizeIp(hops.pop()!);
    // A hop that is not an address: the trusted proxy that reported it is as far as we can see.
    if (!net.isIP(next)) break;
    current = next;
  }
  return current;
}
