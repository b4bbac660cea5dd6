/**
 * The operator's settings for limits, client addresses, metrics and request
 * logs: a fragment of lib/config.ts's environment schema (validated there,
 * with every other variable) and the typed object it becomes.
 */
import { z } from "zod";
import { parseDuration } from "../duration";
import { parseLimitRules, type LimitRules } from "./rules";
import { TrustedProxies } from "./clientIp";

export interface OperationsConfig {
  /** Rate limits and lockouts (lib/limits/rules.ts). */
  limits: LimitRules;
  /** RFC 8628 §3.2 `interval`: the device polling pace; faster polls get `slow_down`. */
  devicePollIntervalSeconds: number;
  /** Peers whose X-Forwarded-For is believed (lib/limits/clientIp.ts). */
  trustedProxies: TrustedProxies;
  ssh: {
    /** Close a connection that has not finished its key exchange (identification string included) by then. */
    handshakeTimeoutSeconds: number;
    /** Authentication attempts per connection, then disconnect (OpenSSH MaxAuthTries). */
    maxAuthTries: number;
    maxConnectionsPerIp: number;
    maxConnections: number;
  };
  /** The Prometheus listener: null when off. */
  metrics: { port: number; listenHost: string } | null;
  /** One JSON line per HTTP request on stdout ("json"), or none. */
  requestLog: "json" | "off";
}

const seconds = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((s, ctx) => {
      try {
        return parseDuration(s);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: (e as Error).message });
        return z.NEVER;
      }
    });

export const operationsEnv = {
  CERTBRIDGE_RATE_LIMITS: z
    .string()
    .optional()
    .transform((s, ctx) => {
      try {
        return parseLimitRules(s);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: (e as Error).message });
        return z.NEVER;
      }
    }),
  CERTBRIDGE_DEVICE_POLL_INTERVAL: z.coerce.number().int().min(1).max(60).default(5),
  CERTBRIDGE_TRUSTED_PROXIES: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (s === undefined) return undefined;
      try {
        return new TrustedProxies(s.split(/[\s,]+/).filter(Boolean));
      } catch (e) {
        ctx.addIssue({ code: "custom", message: (e as Error).message });
        return z.NEVER;
      }
    }),
  CERTBRIDGE_SSH_HANDSHAKE_TIMEOUT: seconds("10s"),
  CERTBRIDGE_SSH_MAX_AUTH_TRIES: z.coerce.number().int().min(1).max(100).default(6),
  CERTBRIDGE_SSH_MAX_CONNECTIONS_PER_IP: z.coerce.number().int().min(1).max(100_000).default(10),
  CERTBRIDGE_SSH_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(100_000).default(256),
  CERTBRIDGE_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  CERTBRIDGE_METRICS_LISTEN_HOST: z.string().min(1).default("127.0.0.1"),
  CERTBRIDGE_REQUEST_LOG: z.enum(["json", "off"]).default("json"),
};

type OperationsEnv = z.output<z.ZodObject<typeof operationsEnv>>;

/**
 * Behind https the usual set-up is a TLS-terminating proxy on the same host: loopback peers are
 * trusted unless the operator says otherwise. Without a setting, no one else's X-Forwarded-For counts.
 */
export function operationsConfig(e: OperationsEnv, publicUrl: string): OperationsConfig {
  const https = publicUrl.startsWith("https:");
  return {
    limits: { ...e.CERTBRIDGE_RATE_LIMITS, device_poll: { limit: 2, windowSeconds: 2 * e.CERTBRIDGE_DEVICE_POLL_INTERVAL } },
    devicePollIntervalSeconds: e.CERTBRIDGE_DEVICE_POLL_INTERVAL,
    trustedProxies: e.CERTBRIDGE_TRUSTED_PROXIES ?? new TrustedProxies(https ? ["127.0.0.1/32", "::1/128"] : []),
    ssh: {
      handshakeTimeoutSeconds: e.CERTBRIDGE_SSH_HANDSHAKE_TIMEOUT,
      maxAuthTries: e.CERTBRIDGE_SSH_MAX_AUTH_TRIES,
      maxConnectionsPerIp: e.CERTBRIDGE_SSH_MAX_CONNECTIONS_PER_IP,
      maxConnections: e.CERTBRIDGE_SSH_MAX_CONNECTIONS,
    },
    metrics: e.CERTBRIDGE_METRICS_PORT === undefined ? null : { port: e.CERTBRIDGE_METRICS_PORT, listenHost: e.CERTBRIDGE_METRICS_LISTEN_HOST },
    requestLog: e.CERTBRIDGE_REQUEST_LOG,
  };
}
