/**
 * Names of the built-in command-line client (certbridge-proxy-init), shared
 * by the portal (lib/oidc/clients.ts) and the CLI, which must not load the
 * portal's database modules.
 */
export const CLI_CLIENT_ID = "certbridge-cli";
export const CLI_CLIENT_NAME = "Certbridge command line (certbridge-proxy-init)";
/** RFC 8628 §3.4 */
export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
/** What the CLI asks for and all the built-in client may get: proxies, and a refresh token for renewal. */
export const CLI_CLIENT_SCOPES = "openid profile offline_access proxy";
