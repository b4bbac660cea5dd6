/**
 * Signing keys by URI, through a small registry of backends (cf. smallstep
 * kms/apiv1): the CA and the VOMS attribute authorities open their keys
 * here, and everything that signs sees only KeyCustody.
 *
 *   /path/to/key.pem, file:/path/to/key.pem, file:///path/to/key.pem → software key
 *   pkcs11:token=…;object=…  (RFC 7512)                               → a key in a token (pkcs11.ts)
 */
import { fileURLToPath } from "node:url";
import { invalidConfig } from "../errors";
import type { KeyCustody } from "../pki/custody";
import { softwareKeys } from "./software";
import { pkcs11Keys } from "./pkcs11";
import type { KeyManager, OpenOptions } from "./types";

export type { KeyManager, OpenOptions, Pkcs11Settings } from "./types";
export { tokenLocation } from "./pkcs11";

const backends = new Map<string, KeyManager>([
  ["file", softwareKeys],
  ["pkcs11", pkcs11Keys],
]);

/** Split a key URI into its backend and location; a plain path is a `file:` key. */
export function parseKeyUri(uri: string): { scheme: string; location: string } {
  const m = /^([a-z][a-z0-9+.-]*):(.*)$/i.exec(uri);
  // A Windows drive letter ("C:\…") or no scheme at all: a plain path.
  if (!m || m[1]!.length === 1) return { scheme: "file", location: uri };
  const scheme = m[1]!.toLowerCase();
  if (scheme === "file") return { scheme, location: m[2]!.startsWith("//") ? fileURLToPath(uri) : m[2]! };
  return { scheme, location: m[2]! };
}

function backendFor(uri: string) {
  const { scheme, location } = parseKeyUri(uri);
  const backend = backends.get(scheme);
  if (!backend) throw invalidConfig(`no key backend for "${scheme}:" keys (known: ${[...backends.keys()].map((s) => `${s}:`).join(", ")})`);
  return { scheme, location, backend };
}

/** Open the signing key named by `uri`. Errors are the backend's (the caller words them for the operator). */
export function openSigner(uri: string, opts: OpenOptions = {}): KeyCustody {
  const { location, backend } = backendFor(uri);
  return backend.open(location, opts);
}

/** Make a new RSA signing key at `uri` (first start), and open it. */
export async function createSigner(uri: string, opts: OpenOptions & { bits: number }): Promise<KeyCustody> {
  const { scheme, location, backend } = backendFor(uri);
  if (!backend.create) throw invalidConfig(`keys of the "${scheme}:" backend cannot be made by Certbridge: create the key on the device`);
  return backend.create(location, opts);
}
