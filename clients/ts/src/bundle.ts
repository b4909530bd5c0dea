// Evidence bundles (GET /v1/export, format govlog-evidence/v1): entries of
// a log with their inclusion proofs against one checkpoint, and the log's
// artifact keys with their receipts, verified as the Go verifier.Bundle
// does.

import { asBytes, base64Strict, type Input } from "./bytes.js";
import { verifyCheckpoint, type Checkpoint } from "./checkpoint.js";
import { leafHash } from "./crypto.js";
import { parseEntry, type Entry } from "./entry.js";
import { fail, VerificationError } from "./errors.js";
import { canonicalize, JSONNumber, JSONObject, parseJSON, type JSONValue } from "./json.js";
import { verifyInclusion } from "./merkle.js";
import { parseNoteKey, type NoteVerifier } from "./note.js";
import type { Policy } from "./policy.js";
import { verifyReceiptJSON } from "./receipt.js";

/** BUNDLE_FORMAT is the format member of an evidence bundle. */
export const BUNDLE_FORMAT = "govlog-evidence/v1";
/** MAX_BUNDLE_ENTRIES is the most entries a bundle holds. */
export const MAX_BUNDLE_ENTRIES = 100_000;

const MEMBERS = ["format", "origin", "verifier_key", "checkpoint", "query", "entries", "keys"];

/** A verified evidence bundle. */
export interface VerifiedBundle {
  readonly origin: string;
  readonly checkpoint: Checkpoint;
  readonly query: Readonly<Record<string, string>>;
  readonly entries: readonly { readonly index: bigint; readonly leafHash: Uint8Array; readonly entry: Entry }[];
  readonly keys: readonly { readonly kid: string; readonly index: bigint }[];
}

function malformed(msg: string): never {
  fail("malformed", `evidence bundle: ${msg}`);
}

function item(v: JSONValue | undefined, names: string[], what: string): JSONObject {
  if (!(v instanceof JSONObject)) malformed(`${what} is not an object`);
  for (const [k] of v.members) if (!names.includes(k)) malformed(`${what} has an unknown member ${JSON.stringify(k)}`);
  for (const n of names) if (!v.has(n)) malformed(`${what} has no ${n}`);
  return v;
}

function index(v: JSONValue | undefined, what: string): bigint {
  if (!(v instanceof JSONNumber) || !/^(0|[1-9][0-9]*)$/.test(v.raw) || BigInt(v.raw) > 0xffffffffffffffffn) malformed(`${what}: index is not a canonical index`);
  return BigInt(v.raw);
}

/**
 * verifyBundle verifies an evidence bundle with nothing but the log's note
 * verifier key (and, given one, the witness policy its checkpoint must
 * satisfy):
 *
 * 1. it is a JSON object with exactly the members format
 *    (govlog-evidence/v1), origin (the log key's name), verifier_key (the
 *    log key), checkpoint, query (an object of strings), entries and keys,
 *    in this order;
 * 2. the checkpoint verifies with the log key (and satisfies the policy);
 * 3. entries, at most 100,000, are objects of exactly index (canonical,
 *    increasing, below the checkpoint's size), entry (canonical base64 of
 *    a valid entry, parseEntry) and inclusion_proof (at most 64 hashes)
 *    that leads to the checkpoint's root;
 * 4. keys, at most 1,000, are objects of exactly kid, jwk, index and
 *    receipt: a JSON receipt (verifyReceiptJSON) of the key entry of kid at
 *    index, whose jwk is jwk.
 *
 * The query is what was asked: it is reported, it is not evidence. It
 * throws a VerificationError.
 */
export async function verifyBundle(bundle: Input, logKey: NoteVerifier, policy?: Policy): Promise<VerifiedBundle> {
  let v: JSONValue;
  try {
    v = parseJSON(asBytes(bundle));
  } catch (e) {
    malformed((e as Error).message);
  }
  if (!(v instanceof JSONObject)) malformed("not a JSON object");
  if (v.members.map(([k]) => k).join(",") !== MEMBERS.join(",")) malformed(`the members are not exactly ${MEMBERS.join(", ")}, in this order`);
  const str = (k: string): string => {
    const s = v.get(k);
    if (typeof s !== "string") malformed(`${k} must be a string`);
    return s;
  };
  if (str("format") !== BUNDLE_FORMAT) malformed(`format is ${JSON.stringify(str("format"))}, want ${BUNDLE_FORMAT}`);
  const origin = str("origin");
  if (origin !== logKey.name) fail("mismatch", `evidence bundle of the log ${JSON.stringify(origin)}, the key given is of ${JSON.stringify(logKey.name)}`);
  let vkey: NoteVerifier;
  try {
    vkey = parseNoteKey(str("verifier_key"));
  } catch {
    malformed("verifier_key is not a note verifier key");
  }
  if (vkey.name !== logKey.name || vkey.keyId !== logKey.keyId) fail("mismatch", "the bundle's verifier_key is not the key given");
  const cpText = str("checkpoint");
  const checkpoint = await verifyCheckpoint(cpText, logKey);
  if (policy) await policy.check(cpText);
  const q = v.get("query");
  if (!(q instanceof JSONObject) || q.members.some(([, m]) => typeof m !== "string")) malformed("query must be an object of strings");
  const query = Object.fromEntries(q.members) as Record<string, string>;

  const list = v.get("entries");
  if (!Array.isArray(list)) malformed("entries is not an array");
  if (list.length > MAX_BUNDLE_ENTRIES) malformed(`more than ${MAX_BUNDLE_ENTRIES} entries`);
  const entries: { index: bigint; leafHash: Uint8Array; entry: Entry }[] = [];
  let last = -1n;
  for (const [n, raw] of list.entries()) {
    const e = item(raw, ["index", "entry", "inclusion_proof"], `entry ${n}`);
    const idx = index(e.get("index"), `entry ${n}`);
    if (idx <= last) malformed(`entry ${n}: index ${idx} does not follow ${last}`);
    if (idx >= checkpoint.size) fail("bad_proof", `entry ${idx} is not in the checkpoint of size ${checkpoint.size}`);
    const b64 = e.get("entry");
    const leaf = typeof b64 === "string" && b64 !== "" ? base64Strict(b64) : undefined;
    if (!leaf) malformed(`entry ${idx}: entry is not canonical base64`);
    const proof = e.get("inclusion_proof");
    if (!Array.isArray(proof) || proof.length > 64) malformed(`entry ${idx}: inclusion_proof is not an array of at most 64 hashes`);
    const hashes = proof.map((h, i) => {
      const d = typeof h === "string" ? base64Strict(h) : undefined;
      if (!d || d.length !== 32) malformed(`entry ${idx}: proof hash ${i} is not the canonical base64 of 32 bytes`);
      return d;
    });
    const lh = leafHash(leaf);
    verifyInclusion(idx, checkpoint.size, lh, hashes, checkpoint.rootHash);
    let entry: Entry;
    try {
      entry = parseEntry(leaf);
    } catch (err) {
      throw new VerificationError("bad_entry", `entry ${idx}: ${(err as Error).message}`);
    }
    entries.push({ index: idx, leafHash: lh, entry });
    last = idx;
  }

  const keyList = v.get("keys");
  if (!Array.isArray(keyList)) malformed("keys is not an array");
  if (keyList.length > 1000) malformed("more than 1000 keys");
  const keys: { kid: string; index: bigint }[] = [];
  for (const [n, raw] of keyList.entries()) {
    const k = item(raw, ["kid", "jwk", "index", "receipt"], `key ${n}`);
    const kid = k.get("kid");
    if (typeof kid !== "string" || kid === "") malformed(`key ${n}: kid is not a string`);
    const idx = index(k.get("index"), `key ${n}`);
    const r = await verifyReceiptJSON(canonicalize(k.get("receipt")!), logKey);
    if (r.index !== idx) fail("mismatch", `key ${JSON.stringify(kid)}: its receipt is of entry ${r.index}, not ${idx}`);
    if (r.entry.kind !== "key" || r.entry.id !== kid) fail("mismatch", `key ${JSON.stringify(kid)}: its receipt is not of the key entry ${JSON.stringify(kid)}`);
    const logged = (parseJSON(r.leaf) as JSONObject).get("key") as JSONObject;
    if (canonicalize(k.get("jwk")!) !== canonicalize(logged.get("jwk")!)) fail("mismatch", `key ${JSON.stringify(kid)}: the jwk is not the logged one`);
    keys.push({ kid, index: idx });
  }
  return { origin, checkpoint, query, entries, keys };
}
