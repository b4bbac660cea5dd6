import type { KeyCustody } from "../pki/custody";

export interface OpenOptions {
  /** Passphrase of an encrypted key (software keys), or a PIN (tokens). */
  passphrase?: string;
  /** PKCS#11 module and user PIN (CERTBRIDGE_PKCS11_*); a `pkcs11:` URI's module-path / pin-source win. */
  pkcs11?: Pkcs11Settings;
}

export interface Pkcs11Settings {
  module?: string;
  pin?: string;
  pinFile?: string;
}

/** One key backend (cf. smallstep kms/apiv1.KeyManager), reached through lib/kms by URI scheme. */
export interface KeyManager {
  /** Open an existing signing key; `location` is the URI without its scheme (a path for `file:`). */
  open(location: string, opts: OpenOptions): KeyCustody;
  /** Make a new RSA key at `location` and open it (backends that cannot make keys leave this out). */
  create?(location: string, opts: OpenOptions & { bits: number }): Promise<KeyCustody>;
}
