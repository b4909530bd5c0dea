// Key-bound artifacts (wire contract §2e): every artifact signing key is
// logged as a key entry, so a verifier holding only the log's note
// verifier key checks an artifact by verifying its key's receipt, then the
// JWT with that key. As the Go package verifier/artifact (VerifyKeyBound)
// and verifier.KeyReceipt.

import { asBytes, base64url, base64urlStrict, type Input } from "./bytes.js";
import { authorize, JWKS, verifyArtifact, type ArtifactClaims, type Authorization } from "./artifact.js";
import type { KeyContent } from "./entry.js";
import { fail } from "./errors.js";
import { canonicalize, JSONNumber, JSONObject, parseJSON, quoteJCS } from "./json.js";
import type { NoteVerifier } from "./note.js";
import type { Policy } from "./policy.js";
import { verifyReceipt, verifyReceiptJSON, type Verified } from "./receipt.js";

/** What a verified key receipt proves: the key entry is at index in the log whose checkpoint covers it. */
export interface VerifiedKey extends Verified {
  /** key is the key entry's content: kid and Ed25519 public key. */
  readonly key: KeyContent;
}

/**
 * verifyKeyReceipt verifies the receipt of a key entry against the log's
 * note verifier key: a tlog-proof (verifyReceipt), or a JSON receipt as
 * GET /v1/keys serves them (verifyReceiptJSON: its id is the kid). The
 * entry must be a key entry. It throws a VerificationError.
 */
export async function verifyKeyReceipt(receipt: Input, logKey: NoteVerifier): Promise<VerifiedKey> {
  const b = asBytes(receipt);
  const v = b[0] === 0x7b /* { */ ? await verifyReceiptJSON(b, logKey) : await verifyReceipt(b, logKey);
  if (v.entry.kind !== "key" || !v.entry.key) fail("bad_entry", `entry ${v.index} is a ${v.entry.kind} entry, not a key`);
  return { ...v, key: v.entry.key };
}

/** What verifyKeyBound requires of an artifact. */
export interface KeyBoundOptions {
  /** audience is the required aud; when absent or "", the artifact must have none. */
  audience?: string;
  /** now is the time (Unix seconds, or a Date) exp and nbf are checked at; default: now. */
  now?: number | Date;
  /** leewaySeconds is the clock skew tolerated on exp and nbf; default 30; negative: none. */
  leewaySeconds?: number;
  /** policy, when set, is the witness policy the key receipt's checkpoint must satisfy. */
  policy?: Policy;
  /** expect, when set, is what the artifact must authorize (see authorize). */
  expect?: Authorization;
}

/**
 * verifyKeyBound verifies an authorization artifact with nothing but the
 * log's note verifier key:
 *
 * 1. keyReceipt verifies (verifyKeyReceipt) and, given a policy, its
 *    checkpoint satisfies it;
 * 2. the artifact's header kid is the key entry's kid and the artifact
 *    verifies with the entry's key (verifyArtifact: alg, typ, signature,
 *    claims, iss = the log key's name, aud, exp and nbf);
 * 3. its govlog.key_index is present and is the key receipt's index;
 * 4. given expect, it authorizes exactly that (authorize).
 *
 * It returns the claims and the verified key, or throws a
 * VerificationError.
 */
export async function verifyKeyBound(
  token: string,
  keyReceipt: Input,
  logKey: NoteVerifier,
  opts: KeyBoundOptions = {},
): Promise<{ claims: ArtifactClaims; key: VerifiedKey }> {
  const key = await verifyKeyReceipt(keyReceipt, logKey);
  if (opts.policy) await opts.policy.check(key.checkpoint.note);
  const jwks = JWKS.parse(`{"keys":[{"crv":"Ed25519","kid":${quoteJCS(key.key.kid)},"kty":"OKP","x":"${base64url(key.key.publicKey)}"}]}`);
  const claims = await verifyArtifact(token, jwks, {
    origin: logKey.name,
    ...(opts.audience !== undefined ? { audience: opts.audience } : {}),
    ...(opts.now !== undefined ? { now: opts.now } : {}),
    ...(opts.leewaySeconds !== undefined ? { leewaySeconds: opts.leewaySeconds } : {}),
  });
  const ki = claims.govlog.key_index;
  if (ki === undefined) fail("binding", "the artifact has no govlog.key_index: it names no logged key");
  if (ki !== key.index) fail("binding", `the artifact's govlog.key_index is ${ki}, the key receipt's index ${key.index}`);
  if (opts.expect) authorize(claims, opts.expect);
  return { claims, key };
}

/**
 * keyReceiptFor returns, from a GET /v1/keys answer, the receipt (JSON
 * text) of the key entry at index, not verified. It throws `binding` when
 * there is none.
 */
export function keyReceiptFor(keys: Input, index: bigint): string {
  const v = parseJSON(keys);
  const list = v instanceof JSONObject ? v.get("keys") : undefined;
  if (!Array.isArray(list)) fail("malformed", 'the key list has no "keys" array');
  for (const k of list) {
    const i = k instanceof JSONObject ? k.get("index") : undefined;
    if (i instanceof JSONNumber && i.raw === index.toString()) {
      const r = (k as JSONObject).get("receipt");
      if (r === undefined) fail("malformed", `the key at index ${index} has no receipt`);
      return canonicalize(r);
    }
  }
  fail("binding", `the key list has no key at index ${index}`);
}

/** keyIndexOf reads, without verifying anything, the govlog.key_index an artifact names. */
export function keyIndexOf(token: string): bigint | undefined {
  const p = token.split(".");
  if (p.length !== 3) return undefined;
  try {
    const c = parseJSON(base64urlStrict(p[1]!) ?? new Uint8Array());
    const g = c instanceof JSONObject ? c.get("govlog") : undefined;
    const i = g instanceof JSONObject ? g.get("key_index") : undefined;
    return i instanceof JSONNumber && /^(0|[1-9][0-9]*)$/.test(i.raw) ? BigInt(i.raw) : undefined;
  } catch {
    return undefined;
  }
}

/** verifyWithKeys is verifyKeyBound with the key receipt taken from a GET /v1/keys answer. */
export async function verifyWithKeys(token: string, keys: Input, logKey: NoteVerifier, opts: KeyBoundOptions = {}): Promise<{ claims: ArtifactClaims; key: VerifiedKey }> {
  const i = keyIndexOf(token);
  if (i === undefined) fail("bad_artifact", "the artifact names no govlog.key_index");
  return verifyKeyBound(token, keyReceiptFor(keys, i), logKey, opts);
}
