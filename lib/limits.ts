/**
 * Limits shared by configuration and issuance. A leaf module: it imports
 * nothing, so lib/config.ts need not reach up into lib/issuance.
 */

/** Below this a proxy is useless (and clock skew would eat it). */
export const MIN_PROXY_SECONDS = 60;
