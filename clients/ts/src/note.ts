// C2SP signed notes (https://c2sp.org/signed-note), read exactly as
// golang.org/x/mod/sumdb/note reads them, and their keys.

import { base64Lenient, concatBytes, fromUTF8, utf8, type Input } from "./bytes.js";
import { ed25519Verify, sha256 } from "./crypto.js";
import { fail, VerificationError } from "./errors.js";

/** Key types of signed-note verifier keys. */
export const KEY_ED25519 = 0x01;
export const KEY_COSIGNATURE_V1 = 0x04;

/** A key that verifies note signatures: a log's note key or a witness's cosignature key. */
export interface NoteVerifier {
  /** name is the key name (for a log key, the log's origin). */
  readonly name: string;
  /** keyId is the 32-bit key ID: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ type ‖ public key). */
  readonly keyId: number;
  /** type is KEY_ED25519 or KEY_COSIGNATURE_V1. */
  readonly type: number;
  /** publicKey is the 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** text is the verifier key as it was read. */
  readonly text: string;
  /** verify reports whether sig (without the key ID) is a valid signature of the note text msg. */
  verify(msg: Uint8Array, sig: Uint8Array): Promise<boolean>;
}

// Unicode White_Space, which Go's unicode.IsSpace reports.
const SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/** isSpace reports whether a character is a Unicode space (Go's unicode.IsSpace). */
export function isSpace(c: string): boolean {
  return SPACE.test(c);
}

/** isValidName: non-empty, no Unicode space, no "+" (C2SP signed-note key names). */
export function isValidName(name: string): boolean {
  return name !== "" && !SPACE.test(name) && !name.includes("+");
}

/** keyId is the C2SP signed-note key ID of a name and a typed public key. */
export function keyId(name: string, typedKey: Uint8Array): number {
  const h = sha256(concatBytes(utf8(name + "\n"), typedKey));
  return ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
}

function cut(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + sep.length)];
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/**
 * parseNoteKey reads a log's note verifier key, "<name>+<key ID as 8 hex
 * digits>+<base64 of 0x01 ‖ Ed25519 public key>", as
 * golang.org/x/mod/sumdb/note.NewVerifier does: the key ID (in either case)
 * must be the key's. It throws a VerificationError with code `bad_key`.
 */
export function parseNoteKey(vkey: string): NoteVerifier {
  const [name, rest] = cut(vkey, "+");
  const [id16, key64] = cut(rest, "+");
  const key = base64Lenient(key64);
  if (!/^[0-9a-fA-F]{8}$/.test(id16) || !key || key.length === 0 || !isValidName(name)) {
    fail("bad_key", `malformed note verifier key ${JSON.stringify(vkey)}`);
  }
  if (parseInt(id16, 16) !== keyId(name, key)) fail("bad_key", `the key ID of ${JSON.stringify(vkey)} is not its key's`);
  if (key[0] !== KEY_ED25519 || key.length !== 33) fail("bad_key", `${JSON.stringify(vkey)} is not an Ed25519 note key (type 0x01)`);
  return ed25519Verifier(name, keyId(name, key), KEY_ED25519, key.subarray(1), vkey);
}

/**
 * parseCosignatureKey reads a witness's cosignature/v1 verifier key (type
 * 0x04) as a govlog witness policy requires it: the written key ID must be
 * exactly the key's, in lower-case hex. It throws `bad_key`.
 */
export function parseCosignatureKey(vkey: string): NoteVerifier {
  const [name, rest] = cut(vkey, "+");
  const [id16, key64] = cut(rest, "+");
  const key = base64Lenient(key64);
  if (id16.length !== 8 || !key || key.length === 0 || !isValidName(name)) {
    fail("bad_key", `malformed cosignature verifier key ${JSON.stringify(vkey)}`);
  }
  if (key[0] !== KEY_COSIGNATURE_V1 || key.length !== 33) {
    fail("bad_key", `${JSON.stringify(vkey)} is not a cosignature/v1 key (type 0x04)`);
  }
  const id = keyId(name, key);
  if (id16 !== hex8(id)) fail("bad_key", `the key ID of ${JSON.stringify(vkey)} is not its key's (${hex8(id)})`);
  return ed25519Verifier(name, id, KEY_COSIGNATURE_V1, key.subarray(1), vkey);
}

function ed25519Verifier(name: string, id: number, type: number, publicKey: Uint8Array, text: string): NoteVerifier {
  const pk = publicKey.slice();
  return {
    name,
    keyId: id,
    type,
    publicKey: pk,
    text,
    verify:
      type === KEY_ED25519
        ? (msg, sig) => ed25519Verify(pk, msg, sig)
        : (msg, sig) => verifyCosignatureV1(pk, msg, sig),
  };
}

/**
 * verifyCosignatureV1 checks a C2SP tlog-cosignature signature: 8 bytes of
 * big-endian timestamp, then the Ed25519 signature of
 * "cosignature/v1\ntime <timestamp>\n" ‖ the note text.
 */
async function verifyCosignatureV1(publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (sig.length !== 8 + 64) return false;
  let lines = 0;
  for (const b of msg) if (b === 0x0a) lines++;
  if (lines < 2) return false;
  const ts = new DataView(sig.buffer, sig.byteOffset, 8).getBigUint64(0);
  const signed = concatBytes(utf8(`cosignature/v1\ntime ${ts}\n`), msg);
  return ed25519Verify(publicKey, signed, sig.subarray(8));
}

/** cosignatureTime is the timestamp (Unix seconds) of a cosignature/v1 signature (the base64 of a signature line). */
export function cosignatureTime(b64: string): bigint | undefined {
  const raw = base64Lenient(b64);
  if (!raw || raw.length !== 4 + 8 + 64) return undefined;
  return new DataView(raw.buffer, raw.byteOffset + 4, 8).getBigUint64(0);
}

/** A signature line of a note. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** base64 is the signature as written: base64 of the key ID and the signature. */
  readonly base64: string;
}

/** An opened note: its text, the signatures verified, and those by unknown keys. */
export interface Note {
  /** text is the signed text, ending in a newline. */
  readonly text: string;
  readonly sigs: NoteSignature[];
  readonly unverified: NoteSignature[];
}

const MAX_SIGNATURES = 100;

/**
 * openNote opens a signed note with the given verifiers, as
 * golang.org/x/mod/sumdb/note.Open does:
 *
 * - the note is valid UTF-8 without control characters but newline;
 * - the text ends at the last blank line, and is followed by 1 to 100
 *   signature lines "— <name> <base64 of key ID ‖ signature>", each a valid
 *   name and base64 of at least 5 bytes, the last ending in a newline;
 * - a signature line whose name and key ID are a verifier's must verify
 *   (a repeated line of that key after the first is ignored unverified);
 *   others are kept as unverified;
 * - at least one signature verifies.
 *
 * It throws a VerificationError: `malformed`, or `bad_signature` when no
 * verifier signed it or a signature of a known key does not verify.
 */
export async function openNote(input: Input, verifiers: readonly NoteVerifier[]): Promise<Note> {
  const msg = typeof input === "string" ? input : fromUTF8(input);
  if (msg === undefined) fail("malformed", "the note is not valid UTF-8");
  for (let i = 0; i < msg.length; i++) {
    const c = msg.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) fail("malformed", "the note has a control character");
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = msg.charCodeAt(i + 1);
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) fail("malformed", "the note is not valid UTF-8");
      i++;
    }
  }
  const split = msg.lastIndexOf("\n\n");
  if (split < 0) fail("malformed", "the note has no signature block");
  const text = msg.slice(0, split + 1);
  let sigs = msg.slice(split + 2);
  if (sigs.length === 0 || !sigs.endsWith("\n")) fail("malformed", "the note's signature block does not end in a newline");
  const textBytes = utf8(text);
  const note = { text, sigs: [] as NoteSignature[], unverified: [] as NoteSignature[] };
  const seen = new Set<string>();
  const seenUnverified = new Set<string>();
  let count = 0;
  while (sigs.length > 0) {
    const nl = sigs.indexOf("\n");
    const line = sigs.slice(0, nl);
    sigs = sigs.slice(nl + 1);
    if (!line.startsWith("\u2014 ")) fail("malformed", "a signature line does not start with an em dash and a space");
    const [name, b64] = cut(line.slice(2), " ");
    const sig = base64Lenient(b64);
    if (!sig || !isValidName(name) || b64 === "" || sig.length < 5) fail("malformed", "malformed signature line");
    const id = ((sig[0]! << 24) | (sig[1]! << 16) | (sig[2]! << 8) | sig[3]!) >>> 0;
    if (++count > MAX_SIGNATURES) fail("malformed", `the note has more than ${MAX_SIGNATURES} signatures`);
    const matches = verifiers.filter((v) => v.name === name && v.keyId === id);
    if (matches.length === 0) {
      if (!seenUnverified.has(line)) {
        seenUnverified.add(line);
        note.unverified.push({ name, keyId: id, base64: b64 });
      }
      continue;
    }
    if (matches.length > 1) fail("bad_key", `ambiguous key ${name}+${hex8(id)}`);
    const k = `${name}+${id}`;
    if (seen.has(k)) continue;
    seen.add(k);
    if (!(await matches[0]!.verify(textBytes, sig.subarray(4)))) {
      fail("bad_signature", `invalid signature for key ${name}+${hex8(id)}`);
    }
    note.sigs.push({ name, keyId: id, base64: b64 });
  }
  if (note.sigs.length === 0) throw new VerificationError("bad_signature", `the note is not signed by ${verifiers.map((v) => v.name).join(", ")}`);
  return note;
}
