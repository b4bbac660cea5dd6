/**
 * The environment of the user-side tools (certbridge-proxy-init,
 * certbridge-proxy-info), read here and nowhere else. They are separate
 * programs from the portal and never see its CERTBRIDGE_* configuration.
 *
 * - X509_USER_PROXY: where grid tools look for the proxy;
 * - CERTBRIDGE_PORTAL: the portal's URL, when --portal is not given.
 */
import os from "node:os";

export interface ProxyToolEnvironment {
  x509UserProxy: string | undefined;
  portal: string | undefined;
  /** Globus's default proxy file, /tmp/x509up_u<uid>. */
  defaultProxyFile: string;
  hostname: string;
}

export function proxyToolEnvironment(): ProxyToolEnvironment {
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  return {
    x509UserProxy: process.env.X509_USER_PROXY || undefined,
    portal: process.env.CERTBRIDGE_PORTAL || undefined,
    // Not os.tmpdir(): Globus and VOMS always look in /tmp.
    defaultProxyFile: `/tmp/x509up_u${uid}`,
    hostname: os.hostname(),
  };
}
