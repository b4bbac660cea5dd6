/**
 * The VOMS step of proxy issuance: check membership against the person's
 * verified claims (and the operator's static table), then put one AC per
 * requested VO into the proxy. A request for a VO or role the person does not
 * hold is refused with access_denied before anything is signed.
 */
import crypto from "node:crypto";
import { accessDenied, invalidRequest } from "../errors";
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
    async extensions({ issuer, notBefore, notAfter }) {
      if (granted.length === 0) return [];
      const now = clock();
      const acs = await Promise.all(
        granted.map(({ vo, fqans }) =>
          buildAttributeCertificate({
            aa: vo.aa,
            holder: issuer,
            fqans,
            serial: Uint8Array.from([0x01, ...crypto.randomBytes(15)]),
            notBefore,
            // never past the proxy, the VO's cap, or the AA certificate
            notAfter: new Date(Math.min(notAfter.getTime(), Math.floor(now.getTime() / 1000) * 1000 + vo.config.acMaxLifetimeSeconds * 1000, vo.aa.cert.notAfter.getTime())),
          }),
        ),
      );
      return [vomsProxyExtension(acs)];
    },
  };
}
