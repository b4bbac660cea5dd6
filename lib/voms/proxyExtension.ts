/**
 * The VOMS step of proxy issuance: check membership against the person's
 * verified claims (and the operator's static table), then put one AC per
 * requested VO into the proxy. A request for a VO or role the person does not
 * hold is refused with access_denied before anything is signed.
 */
import crypto from "node:crypto";
import { accessDenied, invalidRequest } from "../errors";
import { formatDuration } from "../duration";
import type { ProxyExtensionHook } from "../authority/types";
import { buildAttributeCertificate, vomsProxyExtension } from "./ac";
import { membershipsFromClaims, parseVomsRequest, selectFqans } from "./membership";
import type { ServedVo } from "./vos";

export interface VomsRequest {
  vo: string;
  fqan: string | null;
}

/** Parse voms-proxy-init style requests ("vo" or "vo:/vo/Role=r"), one or more. */
export function parseVomsRequests(texts: readonly string[]): VomsRequest[] {
  const out: VomsRequest[] = [];
  for (const t of texts.flatMap((x) => x.split(",")).map((x) => x.trim()).filter(Boolean)) {
    try {
      out.push(parseVomsRequest(t));
    } catch (e) {
      throw invalidRequest(`voname: ${(e as Error).message}`);
    }
  }
  if (out.length > 8) throw invalidRequest("voname: at most 8 VOs per proxy");
  return out;
}

/**
 * @param allowedVos the requesting gateway's VO allow-list (null: any served
 *   VO); checked in the policy step so a refusal is audited like any other.
 */
export function vomsExtension(vos: Map<string, ServedVo>, requests: readonly VomsRequest[], clock: () => Date, allowedVos: readonly string[] | null = null): ProxyExtensionHook {
  const granted: { vo: ServedVo; fqans: string[] }[] = [];
  const warnings: string[] = [];
  return {
    authorize({ identity, claims }) {
      for (const r of requests) {
        const vo = vos.get(r.vo);
        if (!vo) throw invalidRequest(`VO ${r.vo} is not served by this portal (served: ${[...vos.keys()].join(", ") || "none"})`);
        if (granted.some((g) => g.vo.config.name === r.vo)) throw invalidRequest(`VO ${r.vo} was requested twice`);
        if (allowedVos && !allowedVos.includes(r.vo)) throw accessDenied(`this gateway is not allowed to request attributes of VO ${r.vo}`);
        const staticFqans = vo.config.members[identity.subject] ?? [];
        const membership = membershipsFromClaims(claims, { staticFqans }).find((m) => m.vo === r.vo);
        const choice = selectFqans(membership, r.vo, r.fqan);
        if (!choice.ok) throw accessDenied(choice.reason);
        granted.push({ vo, fqans: choice.fqans });
      }
    },
    describe() {
      return { vo: granted.map((g) => g.vo.config.name).join(",") || undefined, fqans: granted.flatMap((g) => g.fqans) };
    },
    warnings() {
      return [...warnings];
    },
    async extensions({ issuer, notBefore, notAfter }) {
      if (granted.length === 0) return [];
      const now = clock();
      const acs = await Promise.all(
        granted.map(({ vo, fqans }) => {
          // never past the proxy, the VO's cap, or the AA certificate
          const acNotAfter = new Date(Math.min(notAfter.getTime(), Math.floor(now.getTime() / 1000) * 1000 + vo.config.acMaxLifetimeSeconds * 1000, vo.aa.cert.notAfter.getTime()));
          // Services stop honouring the VO's attributes when the AC ends, though the proxy still
          // authenticates: say so, as voms-proxy-init does ("the validity of this VOMS AC … is shorter").
          // (A minute's slack: the AC's end is taken from a clock read rounded to the second.)
          if (acNotAfter.getTime() < notAfter.getTime() - 60_000) {
            warnings.push(`the VOMS attributes of ${vo.config.name} end at ${acNotAfter.toISOString()}, before the proxy (${notAfter.toISOString()}): the VO's maximum AC lifetime is ${formatDuration(vo.config.acMaxLifetimeSeconds)}`);
          }
          return buildAttributeCertificate({
            aa: vo.aa,
            holder: issuer,
            fqans,
            serial: Uint8Array.from([0x01, ...crypto.randomBytes(15)]),
            notBefore,
            notAfter: acNotAfter,
          });
        }),
      );
      return [vomsProxyExtension(acs)];
    },
  };
}
