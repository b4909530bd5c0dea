// Bytes, text and base64, strictly.

import { fail } from "./errors.js";

const encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error; ignoreBOM: a leading U+FEFF is kept (and
// then refused by whatever parses the text), not silently dropped.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** utf8 encodes text as UTF-8. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** fromUTF8 decodes UTF-8, or returns undefined when it is not valid UTF-8. */
export function fromUTF8(data: Uint8Array): string | undefined {
  try {
    return decoder.decode(data);
  } catch {
    return undefined;
  }
}

/** Input is evidence as bytes, or as text (encoded as UTF-8). */
export type Input = Uint8Array | string;

/** asBytes returns the bytes of an input. */
export function asBytes(input: Input): Uint8Array {
  return typeof input === "string" ? utf8(input) : input;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

const STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const STD_VALUES = table(STD);
const URL_VALUES = table(URL);

function table(alphabet: string): Int16Array {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < alphabet.length; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
}

function encode(b: Uint8Array, alphabet: string, pad: boolean): string {
  let s = "";
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    s += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + alphabet[n & 63]!;
  }
  const rest = b.length - i;
  if (rest === 1) {
    const n = b[i]! << 16;
    s += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + (pad ? "==" : "");
  } else if (rest === 2) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8);
    s += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + (pad ? "=" : "");
  }
  return s;
}

/** base64 encodes standard base64 (RFC 4648 §4) with padding. */
export function base64(b: Uint8Array): string {
  return encode(b, STD, true);
}

/** base64url encodes base64url (RFC 4648 §5) without padding. */
export function base64url(b: Uint8Array): string {
  return encode(b, URL, false);
}

/**
 * decode reads base64 of the given alphabet. padded: the input is whole
 * groups of 4 with "=" padding (Go's StdEncoding), else without padding
 * (RawURLEncoding). strict: the unused bits of the last character must be
 * zero, so that only the one canonical encoding of some bytes is read.
 * It returns undefined on any error.
 */
function decode(s: string, values: Int16Array, padded: boolean, strict: boolean): Uint8Array | undefined {
  let end = s.length;
  if (padded) {
    if (s.length % 4 !== 0) return undefined;
    if (end > 0 && s[end - 1] === "=") end--;
    if (end > 0 && s[end - 1] === "=") end--;
    if (s.length - end === 2 && end % 4 !== 2) return undefined;
    if (s.length - end === 1 && end % 4 !== 3) return undefined;
  } else if (s.length % 4 === 1) {
    return undefined;
  }
  const out = new Uint8Array(Math.floor((end * 6) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? values[c]! : -1;
    if (v < 0) return undefined;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if (strict && bits > 0 && (acc & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

/** fromBase64 reads canonical standard base64 with padding, or throws `malformed`. */
export function fromBase64(s: string, what: string): Uint8Array {
  return decode(s, STD_VALUES, true, true) ?? fail("malformed", `${what} is not canonical base64`);
}

/** fromBase64Strict reads canonical standard base64, or returns undefined. */
export function base64Strict(s: string): Uint8Array | undefined {
  return decode(s, STD_VALUES, true, true);
}

/**
 * base64Lenient reads standard base64 as Go's base64.StdEncoding does: with
 * padding, skipping CR and LF, ignoring the unused bits of the last
 * character.
 */
export function base64Lenient(s: string): Uint8Array | undefined {
  return decode(s.replace(/[\r\n]/g, ""), STD_VALUES, true, false);
}

/** base64urlStrict reads canonical base64url without padding, or returns undefined. */
export function base64urlStrict(s: string): Uint8Array | undefined {
  return decode(s, URL_VALUES, false, true);
}

/**
 * base64Any reads base64 in either alphabet, with or without padding, as
 * the JWK library of the Go verifier reads key members.
 */
export function base64Any(s: string): Uint8Array | undefined {
  const t = s.replace(/=+$/, "");
  if (/[-_]/.test(t) && /[+/]/.test(t)) return undefined;
  return decode(t, /[-_]/.test(t) ? URL_VALUES : STD_VALUES, false, false);
}

/** isDigits reports whether s is one or more ASCII digits. */
export function isDigits(s: string): boolean {
  return /^[0-9]+$/.test(s);
}

/**
 * parseUint64 reads a canonical decimal (no sign, no leading zeros) of at
 * most 2^64-1, or returns undefined.
 */
export function parseUint64(s: string): bigint | undefined {
  if (!/^(0|[1-9][0-9]{0,19})$/.test(s)) return undefined;
  const n = BigInt(s);
  return n <= 0xffffffffffffffffn ? n : undefined;
}
