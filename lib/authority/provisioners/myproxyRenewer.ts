/**
 * MyProxy renewal (`myproxy-logon -a <renewer credential> -l <person>`, empty passphrase): a VO
 * box keeps a person's proxy alive with its own host credential. MyProxy servers store the
 * person's credential and let "authorized renewers" refresh it; here nothing is stored but the
 * person's consent, so the checks are, in order:
 *
 *   1. proof of possession — the -a chain signed the server's fresh challenge (SHA-256);
 *   2. registered renewer — the -a chain's host certificate subject was registered by an
 *      administrator; or, as with a MyProxy server, -a is the person's own current proxy (from
 *      this portal's CA, not revoked, of the person USERNAME names) and the renewer is the TLS
 *      client certificate chain (the VO box's host credential);
 *   3. vouched for — that host certificate was issued by a CA registered for it, is current and
 *      not on its registered CRL, and every proxy above it is sound (renewerChain.ts);
 *   4. the person — USERNAME is their subject DN or their account name;
 *   5. consent — the person consented on /account to renewal by this renewer, for the VO (and
 *      role) asked for, and the consent stands (not revoked, not ended); proxies end with it.
 */
import type { Clock } from "../../clock";
import type { CertificateAuthority } from "../../ca/authority";
import { verifyClientChain } from "../../myproxy/clientChain";
import { accessDenied, invalidRequest } from "../../errors";
import { findIdentityClaimsByName, findMyProxyRenewerBySubject, findRenewalConsents, type Db } from "../../db";
import { checkVouched, claimedRenewer, readRenewerChain, refuseRenewer, verifyChallengeSignature } from "../../myproxy/renewerChain";
import { isRoleFqan, toLongFqan } from "../../voms/membership";
import type { VomsRequest } from "../../voms/proxyExtension";
import { personOf, type Provisioner, type Requester } from "../types";

export interface MyProxyRenewalInput {
  /** USERNAME: the person's subject DN or account name. */
  username: string;
  /** The challenge this server sent (AUTHORIZATION_DATA). */
  challenge: string;
  /** The client's signature over it, and the chain whose first key made it (leaf first, DER). */
  signature: Uint8Array;
  chain: readonly Uint8Array[];
  /** The TLS client certificate chain, leaf first (the classic MyProxy renewer: its host credential). */
  tlsChain: readonly Uint8Array[];
  /** What the request asks for (VONAME/VOROLE). */
  voms: readonly VomsRequest[];
  ip: string | null;
  /** Filled as soon as the renewer is known, for the audit record of a refusal. */
  seen?: { renewer: string | null };
}

const normalName = (name: string) => name.trim().replace(/\/+$/, "");
const day = (d: Date) => d.toISOString().replace(/\.\d+Z$/, "Z");

export function myproxyRenewer(deps: { db: Db; ca: CertificateAuthority; clock: Clock; accountUrl: string }): Provisioner<MyProxyRenewalInput, Requester> {
  return {
    name: "myproxy-renewal",
    async authorize(input) {
      const now = deps.clock();
      // 1. proof of possession (of the -a credential)
      if (input.seen) input.seen.renewer = claimedRenewer(input.chain);
      const signed = readRenewerChain(input.chain, now);
      if (!verifyChallengeSignature(signed, input.challenge, input.signature)) throw refuseRenewer("the signature over the challenge does not verify with the first certificate's key");
      // 2. registered: the -a credential is the VO box's own; or (classic MyProxy) -a is the
      //    person's current proxy and the VO box is the TLS client (the handshake proved its key).
      let renewer = await findMyProxyRenewerBySubject(deps.db, signed.subject);
      let chain = signed;
      let renewed: string | null = null;
      if (!renewer && input.tlsChain.length) {
        const tlsRenewer = claimedRenewer(input.tlsChain);
        const registered = tlsRenewer ? await findMyProxyRenewerBySubject(deps.db, tlsRenewer) : null;
        if (registered) {
          if (input.seen) input.seen.renewer = registered.subject;
          chain = readRenewerChain(input.tlsChain, now);
          // The -a credential must then be a current chain of the person's, from this portal's CA (not revoked).
          renewed = (await verifyClientChain(deps.db, deps.ca, input.chain, now)).subject;
          renewer = registered;
        }
      }
      if (!renewer) throw accessDenied(`${signed.subject} is not a registered renewer on this portal: its administrator registers VO boxes (certbridge renewer add)`);
      // 3. vouched for
      await checkVouched(chain, renewer, now);
      // 4. the person
      const person = input.username ? await findIdentityClaimsByName(deps.db, normalName(input.username)) : null;
      if (!person) throw accessDenied(`no person ${JSON.stringify(input.username.slice(0, 200))} on this portal (USERNAME must be a subject DN or an account name)`);
      if (renewed !== null && renewed !== person.subject) throw accessDenied("certificate subject does not match credential to be renewed (the -a proxy is not the person's named by USERNAME)");
      // 5. consent for this VO/role
      if (input.voms.length !== 1) throw invalidRequest("renewal is for one VO: ask for it with -m <vo> (or -m <vo>:<role FQAN>), as the person's consent names it");
      const asked = input.voms[0]!;
      const askedRole = asked.fqan && isRoleFqan(asked.fqan) ? toLongFqan(asked.fqan) : null;
      const consents = await findRenewalConsents(deps.db, person.id, renewer.id);
      const forThis = consents.filter((c) => c.vo === asked.vo && (askedRole === null || c.role === askedRole));
      const standing = forThis.find((c) => c.revokedAt === null && c.expiresAt > now);
      const what = `renewal by ${renewer.subject} for ${askedRole ?? asked.vo}`;
      if (!standing) {
        const revoked = forThis.find((c) => c.revokedAt !== null);
        const ended = forThis.find((c) => c.revokedAt === null);
        const why = ended ? `the person's consent to ${what} ended at ${day(ended.expiresAt)}` : revoked ? `the person revoked their consent to ${what} at ${day(revoked.revokedAt!)}` : `the person has not consented to ${what}`;
        throw accessDenied(`${why}; they can consent at ${deps.accountUrl}`);
      }
      return {
        ...personOf(person),
        actor: `renewer:${renewer.subject}`,
        channel: "myproxy",
        ip: input.ip,
        allowedVos: [standing.vo],
        notAfterCap: standing.expiresAt,
        auditDetails: { channel: "myproxy", username: input.username, renewer: renewer.subject, renewerChainEnd: chain.notAfter.toISOString(), consentId: standing.id, ...(renewed ? { renewedProxyOf: renewed } : {}) },
      };
    },
  };
}
