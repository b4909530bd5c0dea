// SHA-256 and Ed25519.
//
// SHA-256 is @noble/hashes (audited, no dependencies, synchronous): a
// Merkle proof hashes a few dozen 65-byte inputs, and WebCrypto's
// crypto.subtle.digest costs a promise per hash (about 8x slower per
// 65-byte hash in Node 20). Ed25519 is WebCrypto (crypto.subtle, in Node
// 20 and current browsers): the platform's own implementation, one
// verification per signature.

import { sha256 as nobleSHA256 } from "@noble/hashes/sha2";
import { hex } from "./bytes.js";

/** sha256 is SHA-256. */
export function sha256(data: Uint8Array): Uint8Array {
  return nobleSHA256(data);
}

/** leafHash is the RFC 6962 leaf hash SHA-256(0x00 ‖ leaf). */
export function leafHash(leaf: Uint8Array): Uint8Array {
  const h = nobleSHA256.create();
  h.update(new Uint8Array([0]));
  h.update(leaf);
  return h.digest();
}

/** nodeHash is the RFC 6962 interior node hash SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const h = nobleSHA256.create();
  h.update(new Uint8Array([1]));
  h.update(left);
  h.update(right);
  return h.digest();
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error("WebCrypto (crypto.subtle) is not available: Ed25519 verification needs Node 20 or a current browser");
  return s;
}

// Imported keys, by their bytes: importing costs about as much as a
// verification, and a verifier checks the same few keys again and again.
const keys = new Map<string, Promise<CryptoKey | undefined>>();
const MAX_KEYS = 1024;

function importKey(publicKey: Uint8Array): Promise<CryptoKey | undefined> {
  const id = hex(publicKey);
  let k = keys.get(id);
  if (!k) {
    if (keys.size >= MAX_KEYS) keys.clear();
    k = subtle()
      .importKey("raw", publicKey.slice(), { name: "Ed25519" }, false, ["verify"])
      .catch(() => undefined); // not a point of the curve
    keys.set(id, k);
  }
  return k;
}

/** ed25519Verify reports whether sig is a valid Ed25519 signature of msg by publicKey (32 bytes). */
export async function ed25519Verify(publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (publicKey.length !== 32 || sig.length !== 64) return false;
  const key = await importKey(publicKey);
  if (!key) return false;
  try {
    return await subtle().verify({ name: "Ed25519" }, key, sig.slice(), msg.slice());
  } catch {
    return false;
  }
}
