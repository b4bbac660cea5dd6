/**
 * The data layer, one module per aggregate; the only code that talks to
 * Prisma. Verb-noun functions with explicit selects; secrets (sealed keys,
 * sealed client secrets) are selected only by functions named for them.
 * Every audit row is written by `recordAudit` (./audit), in the same
 * transaction as the state change it describes.
 */
export * from "./client";
export * from "./migrate";
export * from "./audit";
export * from "./ca";
export * from "./identities";
export * from "./certificates";
export * from "./sshKeys";
export * from "./myproxyRenewers";
export * from "./clients";
export * from "./oidcPayloads";
export * from "./consoleSessions";
export * from "./crl";
export * from "./myproxyCodes";
export * from "./leadership";
export { isDatabaseUnavailable, pingDatabase, SQLITE_TRANSACTION_WAIT_MS } from "./faults";
export * from "./rateCounters";
export * from "./pooledKeys";
