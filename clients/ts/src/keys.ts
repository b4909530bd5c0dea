// Key-bound artifacts (wire contract §2e): every artifact signing key is
// logged as a key entry, so a verifier holding only the log's note
// verifier key checks an artifact by verifying its key's receipt, then the
// JWT with that key. As the Go package verifier/artifact (VerifyKeyBound)
// and verifier.KeyReceipt.

import { asBytes, base64urlStrict, fromUTF8, type Input } from "./bytes.js";
import { authorize, JWKS, verifyArtifact, type ArtifactClaims, type Authorization } from "./artifact.js";
import type { Checkpoint } from "./checkpoint.js";
import { fail, VerificationError } from "./errors.js";
import { canonicalize, JSONNumber, JSONObject, parseJSON, quoteJCS, type JSONValue } from "./json.js";
import type { NoteVerifier } from "./note.js";
import type { Policy } from "./policy.js";
import { checkReceiptJSON, parseTLogProof, verifyLeaf, type TLogProof } from "./receipt.js";
import { parseUTC } from "./time.js";

/** MAX_ENTRY_BYTES bounds an entry (the tlog-tiles entry bundle limit). */
const MAX_ENTRY_BYTES = 65535;

/** A key entry: an artifact signing key the log published before using it. */
export interface KeyEntry {
  /** kid is the key id artifacts signed with the key name in their header. */
  readonly kid: string;
  /** jwk is the public JWK, as in the entry (RFC 8785 canonical JSON). */
  readonly jwk: string;
  /** publicKey is the 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  readonly loggedAt: string;
  readonly submitter: string;
}

/** What a verified key receipt proves: the key entry is at index in the log whose checkpoint covers it. */
export interface VerifiedKey {
  readonly checkpoint: Checkpoint;
  readonly index: bigint;
  readonly leafHash: Uint8Array;
  readonly leaf: Uint8Array;
  readonly key: KeyEntry;
}

function exact(o: JSONValue | undefined, names: string[], what: string): JSONObject {
  if (!(o instanceof JSONObject)) fail("bad_entry", `${what} is not a JSON object`);
  for (const [k] of o.members) if (!names.includes(k)) fail("bad_entry", `${what} has an unknown member ${JSON.stringify(k)}`);
  for (const n of names) if (!o.has(n)) fail("bad_entry", `${what} has no ${n}`);
  return o;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/**
 * parseKeyEntry parses and validates the leaf of a key entry, as the Go
 * log.ParseEntry does: RFC 8785 canonical JSON with exactly the members
 * key, logged_at (UTC, 9 fractional digits), submitter (non-empty) and v
 * (1); key is exactly {"jwk":{"crv":"Ed25519","kty":"OKP","x":X},"kid":K}
 * with X the canonical unpadded base64url of 32 bytes and K with the
 * syntax of an id. It throws `bad_entry`.
 */
export function parseKeyEntry(leaf: Input): KeyEntry {
  const bytes = asBytes(leaf);
  if (bytes.length > MAX_ENTRY_BYTES) fail("bad_entry", `the entry is ${bytes.length} bytes, the limit is ${MAX_ENTRY_BYTES}`);
  let v: JSONValue;
  try {
    v = parseJSON(bytes);
  } catch (e) {
    fail("bad_entry", `the entry is not valid JSON: ${(e as Error).message}`);
  }
  if (canonicalize(v) !== fromUTF8(bytes)) fail("bad_entry", "the entry is not in RFC 8785 canonical form");
  const e = exact(v, ["key", "logged_at", "submitter", "v"], "the key entry");
  const ver = e.get("v");
  if (!(ver instanceof JSONNumber) || ver.raw !== "1") fail("bad_entry", "the entry's v is not 1");
  const loggedAt = e.get("logged_at");
  if (typeof loggedAt !== "string" || !parseUTC(loggedAt, true)) fail("bad_entry", "the entry has a bad logged_at");
  const submitter = e.get("submitter");
  if (typeof submitter !== "string" || submitter === "") fail("bad_entry", "the entry has no submitter");
  const key = exact(e.get("key"), ["jwk", "kid"], "the entry's key");
  const kid = key.get("kid");
  if (typeof kid !== "string" || !ID.test(kid)) fail("bad_entry", "the entry's kid is not an id");
  const jwk = exact(key.get("jwk"), ["crv", "kty", "x"], "the entry's jwk");
  if (jwk.get("kty") !== "OKP" || jwk.get("crv") !== "Ed25519") fail("bad_entry", "the entry's jwk is not an Ed25519 OKP key");
  const xv = jwk.get("x");
  const x = typeof xv === "string" ? base64urlStrict(xv) : undefined;
  if (!x || x.length !== 32) fail("bad_entry", "the entry's jwk x is not the unpadded base64url of a 32-byte key");
  return { kid, jwk: canonicalize(jwk), publicKey: x, loggedAt, submitter };
}

/**
 * verifyKeyReceipt verifies the receipt of a key entry against the log's
 * note verifier key: a tlog-proof, or a JSON receipt (as GET /v1/keys
 * serves them) whose id is the kid. Every check of
 * verifyReceipt is made, except that the entry must be a key entry
 * (parseKeyEntry). It throws a VerificationError.
 */
export async function verifyKeyReceipt(receipt: Input, logKey: NoteVerifier): Promise<VerifiedKey> {
  const b = asBytes(receipt);
  let p: TLogProof;
  let id: string | undefined;
  if (b[0] === 0x7b /* { */) ({ id, proof: p } = checkReceiptJSON(b, true));
  else p = parseTLogProof(b);
  const { checkpoint, leafHash, leaf } = await verifyLeaf(p, logKey);
  let key: KeyEntry;
  try {
    key = parseKeyEntry(leaf);
  } catch (e) {
    throw new VerificationError("bad_entry", `entry ${p.index}: ${(e as Error).message}`);
  }
  if (id !== undefined && id !== key.kid) fail("mismatch", `the receipt's id ${JSON.stringify(id)} is not the kid of its key entry, ${JSON.stringify(key.kid)}`);
  return { checkpoint, index: p.index, leafHash, leaf, key };
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
  const x = key.key.jwk.match(/"x":("[^"]*")/)![1]!;
  const jwks = JWKS.parse(`{"keys":[{"crv":"Ed25519","kid":${quoteJCS(key.key.kid)},"kty":"OKP","x":${x}}]}`);
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
export function verifyWithKeys(token: string, keys: Input, logKey: NoteVerifier, opts: KeyBoundOptions = {}): Promise<{ claims: ArtifactClaims; key: VerifiedKey }> {
  const i = keyIndexOf(token);
  if (i === undefined) fail("bad_artifact", "the artifact names no govlog.key_index");
  return verifyKeyBound(token, keyReceiptFor(keys, i), logKey, opts);
}
