/**
 * The PKCS#11 key backend: an RSA key in a token (an HSM, or SoftHSM2 in
 * tests), named by an RFC 7512 URI:
 *
 *   pkcs11:token=Certbridge%20CA;object=ca-key[;id=%01%02][?module-path=/usr/lib/…so&pin-source=/etc/…/pin]
 *
 * The module comes from the URI's `module-path`, else CERTBRIDGE_PKCS11_MODULE;
 * the user PIN from `pin-value` / `pin-source` (a file), else
 * CERTBRIDGE_PKCS11_PIN / CERTBRIDGE_PKCS11_PIN_FILE. The token is asked for
 * its mechanisms (C_GetMechanismList): CKM_SHA256_RSA_PKCS when it has it,
 * else CKM_RSA_PKCS over a SHA-256 DigestInfo we build. Signatures go through
 * one session, one at a time (some tokens allow nothing else). New keys
 * (`ca init --key pkcs11:…`) are generated in the token: private, sensitive,
 * not extractable.
 *
 * pkcs11js is a native addon, loaded only when a pkcs11: key is used.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import type * as P11 from "pkcs11js";
import { invalidConfig } from "../errors";
import { SHA256_WITH_RSA_ALGORITHM, type KeyCustody } from "../pki/custody";
import type { KeyManager, OpenOptions } from "./types";

type Pkcs11Module = typeof P11;

let loadedBinding: Pkcs11Module | null = null;
function binding(): Pkcs11Module {
  loadedBinding ??= createRequire(import.meta.url)("pkcs11js") as Pkcs11Module;
  return loadedBinding;
}

// ---------------------------------------------------------------------------
// RFC 7512 URIs
// ---------------------------------------------------------------------------

export interface Pkcs11Uri {
  token?: string;
  object?: string;
  id?: Buffer;
  type?: string;
  modulePath?: string;
  pinValue?: string;
  pinSource?: string;
}

function pctDecode(v: string, what: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) {
    if (v[i] === "%") {
      const hex = v.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw invalidConfig(`pkcs11: URI: bad percent-encoding in ${what}`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else out.push(...Buffer.from(v[i]!, "utf8"));
  }
  return Buffer.from(out);
}

/** Parse the part after `pkcs11:` (path attributes `;`-separated, query attributes `&`-separated). */
export function parsePkcs11Uri(location: string): Pkcs11Uri {
  const q = location.indexOf("?");
  const pathPart = q < 0 ? location : location.slice(0, q);
  const queryPart = q < 0 ? "" : location.slice(q + 1);
  const uri: Pkcs11Uri = {};
  for (const attr of pathPart.split(";").filter(Boolean)) {
    const eq = attr.indexOf("=");
    if (eq <= 0) throw invalidConfig(`pkcs11: URI: "${attr}" is not name=value`);
    const name = attr.slice(0, eq);
    const raw = attr.slice(eq + 1);
    if (name === "token") uri.token = pctDecode(raw, name).toString("utf8");
    else if (name === "object") uri.object = pctDecode(raw, name).toString("utf8");
    else if (name === "id") uri.id = pctDecode(raw, name);
    else if (name === "type") uri.type = pctDecode(raw, name).toString("utf8");
    // Other RFC 7512 attributes (manufacturer, serial, slot-id, …) are not used to select here.
  }
  for (const attr of queryPart.split("&").filter(Boolean)) {
    const eq = attr.indexOf("=");
    if (eq <= 0) throw invalidConfig(`pkcs11: URI: "${attr}" is not name=value`);
    const name = attr.slice(0, eq);
    const value = pctDecode(attr.slice(eq + 1), name).toString("utf8");
    if (name === "module-path") uri.modulePath = value;
    else if (name === "pin-value") uri.pinValue = value;
    else if (name === "pin-source") uri.pinSource = value.startsWith("file:") ? value.replace(/^file:(\/\/)?/, "") : value;
  }
  if (uri.type !== undefined && uri.type !== "private") throw invalidConfig(`pkcs11: URI: type=${uri.type}: a signing key is type=private`);
  if (!uri.token) throw invalidConfig("pkcs11: URI names no token= (the token label)");
  if (!uri.object && !uri.id) throw invalidConfig("pkcs11: URI names neither object= nor id= (which key in the token)");
  return uri;
}

/** Where an open key lives, for `ca info`: the URI without PIN material. */
export function describePkcs11Uri(uri: Pkcs11Uri, modulePath: string): string {
  const enc = (s: string) => encodeURIComponent(s);
  const parts = [`token=${enc(uri.token!)}`];
  if (uri.object) parts.push(`object=${enc(uri.object)}`);
  if (uri.id) parts.push(`id=${[...uri.id].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("")}`);
  return `pkcs11:${parts.join(";")} (module ${modulePath})`;
}

// ---------------------------------------------------------------------------
// Modules, tokens, sessions
// ---------------------------------------------------------------------------

/** C_Initialize once per module per process. */
const modules = new Map<string, P11.PKCS11>();

function moduleFor(modulePath: string, setting: string): P11.PKCS11 {
  const existing = modules.get(modulePath);
  if (existing) return existing;
  const p11 = binding();
  const lib = new p11.PKCS11();
  try {
    lib.load(modulePath);
  } catch (e) {
    throw invalidConfig(`${setting}: cannot load the PKCS#11 module ${modulePath}: ${oneLine(e)}`, e);
  }
  try {
    lib.C_Initialize();
  } catch (e) {
    if (!(e instanceof p11.Pkcs11Error && e.code === p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
      throw invalidConfig(`${setting}: the PKCS#11 module ${modulePath} did not initialise: ${oneLine(e)}`, e);
    }
  }
  modules.set(modulePath, lib);
  return lib;
}

const oneLine = (e: unknown) => String((e as Error)?.message ?? e).split("\n")[0]!;

interface Settings {
  modulePath: string;
  moduleSetting: string;
  pin: string;
  pinSetting: string;
}

function settingsFor(uri: Pkcs11Uri, opts: OpenOptions): Settings {
  const s = opts.pkcs11 ?? {};
  const modulePath = uri.modulePath ?? s.module;
  const moduleSetting = uri.modulePath ? "the key URI's module-path" : "CERTBRIDGE_PKCS11_MODULE";
  if (!modulePath) throw invalidConfig("CERTBRIDGE_PKCS11_MODULE is needed for a pkcs11: key (or module-path= in the key URI)");
  let pin: string | undefined;
  let pinSetting: string;
  if (uri.pinValue !== undefined) {
    pin = uri.pinValue;
    pinSetting = "the key URI's pin-value";
  } else if (uri.pinSource !== undefined || s.pinFile) {
    const file = uri.pinSource ?? s.pinFile!;
    pinSetting = uri.pinSource !== undefined ? "the key URI's pin-source" : "CERTBRIDGE_PKCS11_PIN_FILE";
    try {
      pin = fs.readFileSync(file, "utf8").replace(/\r?\n$/, "");
    } catch (e) {
      throw invalidConfig(`${pinSetting}: cannot read the PIN file ${file}: ${oneLine(e)}`, e);
    }
  } else {
    pin = s.pin;
    pinSetting = "CERTBRIDGE_PKCS11_PIN";
  }
  if (!pin) throw invalidConfig("CERTBRIDGE_PKCS11_PIN or CERTBRIDGE_PKCS11_PIN_FILE is needed for a pkcs11: key (or pin-source= in the key URI)");
  return { modulePath, moduleSetting, pin, pinSetting };
}

/** A logged-in session on the token the URI names. */
function openSession(uri: Pkcs11Uri, s: Settings): { lib: P11.PKCS11; slot: P11.Handle; session: P11.Handle } {
  const p11 = binding();
  const lib = moduleFor(s.modulePath, s.moduleSetting);
  const slots = lib.C_GetSlotList(true);
  const labels: string[] = [];
  const slot = slots.find((sl) => {
    const label = lib.C_GetTokenInfo(sl).label.replace(/[\s\0]+$/, "");
    labels.push(label);
    return label === uri.token;
  });
  if (!slot) {
    throw invalidConfig(`no token labelled "${uri.token}" in ${s.modulePath} (tokens: ${labels.map((l) => `"${l}"`).join(", ") || "none"}): check the key URI's token=`);
  }
  const session = lib.C_OpenSession(slot, p11.CKF_SERIAL_SESSION | p11.CKF_RW_SESSION);
  try {
    lib.C_Login(session, p11.CKU_USER, s.pin);
  } catch (e) {
    if (!(e instanceof p11.Pkcs11Error && e.code === p11.CKR_USER_ALREADY_LOGGED_IN)) {
      lib.C_CloseSession(session);
      const why = e instanceof p11.Pkcs11Error && (e.code === p11.CKR_PIN_INCORRECT || e.code === p11.CKR_PIN_LEN_RANGE) ? "the token refused the PIN" : oneLine(e);
      throw invalidConfig(`${s.pinSetting}: cannot log in to token "${uri.token}": ${why}`, e);
    }
  }
  return { lib, slot, session };
}

function keyTemplate(uri: Pkcs11Uri, cls: number): P11.Template {
  const p11 = binding();
  const t: P11.Template = [{ type: p11.CKA_CLASS, value: cls }];
  if (uri.object) t.push({ type: p11.CKA_LABEL, value: uri.object });
  if (uri.id) t.push({ type: p11.CKA_ID, value: uri.id });
  return t;
}

function findObjects(lib: P11.PKCS11, session: P11.Handle, template: P11.Template): P11.Handle[] {
  lib.C_FindObjectsInit(session, template);
  try {
    return lib.C_FindObjects(session, 16);
  } finally {
    lib.C_FindObjectsFinal(session);
  }
}

/** A CK_ULONG attribute value (native byte order, 4 or 8 bytes; little-endian on the platforms Node runs on). */
const ulong = (b: Buffer) => (b.length === 8 ? Number(b.readBigUInt64LE(0)) : b.readUInt32LE(0));

const DIGEST_INFO_SHA256 = Buffer.from("3031300d060960864801650304020105000420", "hex");

/** DER DigestInfo { sha256, NULL, SHA-256(data) } (RFC 8017 §9.2): what CKM_RSA_PKCS pads and signs for sha256WithRSAEncryption. */
export function sha256DigestInfo(data: Uint8Array): Buffer {
  return Buffer.concat([DIGEST_INFO_SHA256, crypto.createHash("sha256").update(data).digest()]);
}

/** A private key in a token. Signs one at a time through its session. */
class Pkcs11Key implements KeyCustody {
  readonly signatureAlgorithm = SHA256_WITH_RSA_ALGORITHM;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly lib: P11.PKCS11,
    private readonly session: P11.Handle,
    private readonly key: P11.Handle,
    readonly publicKeySpki: Uint8Array,
    readonly bits: number,
    /** CKM_SHA256_RSA_PKCS, or CKM_RSA_PKCS over a DigestInfo. */
    readonly mechanism: "CKM_SHA256_RSA_PKCS" | "CKM_RSA_PKCS",
    /** Where the key lives (for `ca info`), no PIN. */
    readonly location: string,
  ) {}

  sign(data: Uint8Array): Promise<Uint8Array> {
    const run = this.queue.then(() => this.signNow(data));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async signNow(data: Uint8Array): Promise<Uint8Array> {
    const p11 = binding();
    const raw = this.mechanism === "CKM_RSA_PKCS";
    const input = raw ? sha256DigestInfo(data) : Buffer.from(data);
    this.lib.C_SignInit(this.session, { mechanism: raw ? p11.CKM_RSA_PKCS : p11.CKM_SHA256_RSA_PKCS }, this.key);
    const sig = await this.lib.C_SignAsync(this.session, input, Buffer.alloc(Math.ceil(this.bits / 8)));
    return new Uint8Array(sig);
  }
}

function spkiOf(lib: P11.PKCS11, session: P11.Handle, key: P11.Handle): { spki: Uint8Array; bits: number } {
  const p11 = binding();
  const attrs = lib.C_GetAttributeValue(session, key, [{ type: p11.CKA_MODULUS }, { type: p11.CKA_PUBLIC_EXPONENT }]);
  const n = attrs[0]!.value as Buffer;
  const e = attrs[1]!.value as Buffer;
  const pub = crypto.createPublicKey({ key: { kty: "RSA", n: n.toString("base64url"), e: e.toString("base64url") }, format: "jwk" });
  return { spki: new Uint8Array(pub.export({ type: "spki", format: "der" })), bits: pub.asymmetricKeyDetails?.modulusLength ?? n.length * 8 };
}

/** The mechanism to sign sha256WithRSAEncryption with, from the token's list (CKM_* numbers); null when neither is there. */
export function pickMechanism(mechanisms: readonly number[]): "CKM_SHA256_RSA_PKCS" | "CKM_RSA_PKCS" | null {
  const p11 = binding();
  if (mechanisms.includes(p11.CKM_SHA256_RSA_PKCS)) return "CKM_SHA256_RSA_PKCS";
  if (mechanisms.includes(p11.CKM_RSA_PKCS)) return "CKM_RSA_PKCS";
  return null;
}

function chooseMechanism(lib: P11.PKCS11, slot: P11.Handle, token: string): "CKM_SHA256_RSA_PKCS" | "CKM_RSA_PKCS" {
  const picked = pickMechanism(lib.C_GetMechanismList(slot));
  if (picked) return picked;
  throw invalidConfig(`token "${token}" offers neither CKM_SHA256_RSA_PKCS nor CKM_RSA_PKCS: it cannot sign sha256WithRSAEncryption (check the key URI's token=)`);
}

function openKey(uri: Pkcs11Uri, s: Settings): Pkcs11Key {
  const { lib, slot, session } = openSession(uri, s);
  const p11 = binding();
  const what = describePkcs11Uri(uri, s.modulePath);
  const found = findObjects(lib, session, keyTemplate(uri, p11.CKO_PRIVATE_KEY));
  if (found.length === 0) throw invalidConfig(`no private key ${what.replace(/ \(module.*$/, "")} in token "${uri.token}": check the key URI's object=/id=`);
  if (found.length > 1) throw invalidConfig(`${found.length} private keys match ${what}: add id= to the key URI`);
  const key = found[0]!;
  const keyType = lib.C_GetAttributeValue(session, key, [{ type: p11.CKA_KEY_TYPE }])[0]!.value as Buffer;
  if (ulong(keyType) !== p11.CKK_RSA) throw invalidConfig(`the key ${what} is not an RSA key`);
  const mechanism = chooseMechanism(lib, slot, uri.token!);
  const { spki, bits } = spkiOf(lib, session, key);
  return new Pkcs11Key(lib, session, key, spki, bits, mechanism, what);
}

export const pkcs11Keys: KeyManager = {
  open(location, opts) {
    const uri = parsePkcs11Uri(location);
    return openKey(uri, settingsFor(uri, opts));
  },
  async create(location, opts) {
    const uri = parsePkcs11Uri(location);
    if (!uri.object) throw invalidConfig("pkcs11: URI for a new key needs object= (its label)");
    const s = settingsFor(uri, opts);
    const { lib, session } = openSession(uri, s);
    const p11 = binding();
    if (findObjects(lib, session, keyTemplate(uri, p11.CKO_PRIVATE_KEY)).length > 0) {
      throw invalidConfig(`token "${uri.token}" already holds a private key object=${uri.object}: adopt it (ca init with its certificate) or name another object=`);
    }
    const id = uri.id ?? crypto.randomBytes(16);
    const common: P11.Template = [
      { type: p11.CKA_TOKEN, value: true },
      { type: p11.CKA_LABEL, value: uri.object },
      { type: p11.CKA_ID, value: id },
    ];
    lib.C_GenerateKeyPair(
      session,
      { mechanism: p11.CKM_RSA_PKCS_KEY_PAIR_GEN },
      [...common, { type: p11.CKA_VERIFY, value: true }, { type: p11.CKA_MODULUS_BITS, value: opts.bits }, { type: p11.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }],
      [
        ...common,
        { type: p11.CKA_PRIVATE, value: true },
        { type: p11.CKA_SENSITIVE, value: true },
        { type: p11.CKA_EXTRACTABLE, value: false },
        { type: p11.CKA_SIGN, value: true },
      ],
    );
    return openKey({ ...uri, id }, s);
  },
};

/** Where a custody's key lives, if it is in a token (for `ca info`). */
export function tokenLocation(key: KeyCustody): string | null {
  return key instanceof Pkcs11Key ? `${key.location}, signing with ${key.mechanism}` : null;
}
