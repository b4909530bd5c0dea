// Receipts: C2SP tlog-proof (https://c2sp.org/tlog-proof) with the entry as
// extra data, and the JSON receipt of the REST API, verified as the Go
// package verifier does (verifier.Receipt, verifier.ReceiptJSON).

import { asBytes, base64Strict, equalBytes, fromUTF8, parseUint64, type Input } from "./bytes.js";
import { verifyCheckpoint, MAX_CHECKPOINT_BYTES, type Checkpoint } from "./checkpoint.js";
import { leafHash } from "./crypto.js";
import { parseEntry, type Entry } from "./entry.js";
import { fail, VerificationError } from "./errors.js";
import { JSONNumber, JSONObject, parseJSON } from "./json.js";
import { verifyInclusion } from "./merkle.js";
import type { NoteVerifier } from "./note.js";

/** MAX_TLOG_PROOF_BYTES bounds a tlog-proof. */
export const MAX_TLOG_PROOF_BYTES = 128 << 10;
/** MAX_RECEIPT_BYTES bounds a JSON receipt. */
export const MAX_RECEIPT_BYTES = 384 << 10;

const HEADER = "c2sp.org/tlog-proof@v1";

/** A parsed tlog-proof (not verified). */
export interface TLogProof {
  readonly index: bigint;
  readonly hashes: Uint8Array[];
  /** checkpoint is the signed note, bytes as written. */
  readonly checkpoint: Uint8Array;
  /** extra is the extra data (for govlog, the entry), undefined when there is no extra line. */
  readonly extra?: Uint8Array;
}

/** What a verified receipt proves: the entry leaf is at index in the log whose checkpoint covers it. */
export interface Verified {
  readonly checkpoint: Checkpoint;
  readonly index: bigint;
  readonly leafHash: Uint8Array;
  /** leaf is the entry bytes. */
  readonly leaf: Uint8Array;
  /** entry is the leaf parsed and validated. */
  readonly entry: Entry;
  readonly inclusionProof: Uint8Array[];
}

/**
 * parseTLogProof reads a tlog-proof, which must be exactly in the canonical
 * form of C2SP tlog-proof:
 *
 *     c2sp.org/tlog-proof@v1
 *     extra <canonical base64>          (optional)
 *     index <decimal, no leading zeros, below 2^64>
 *     <canonical base64 of a 32-byte hash>   (zero or more lines)
 *     <blank line>
 *     <the checkpoint note, ending in a newline>
 *
 * It throws `malformed`.
 */
export function parseTLogProof(input: Input): TLogProof {
  const data = asBytes(input);
  if (data.length > MAX_TLOG_PROOF_BYTES) fail("malformed", `the tlog-proof is ${data.length} bytes, the limit is ${MAX_TLOG_PROOF_BYTES}`);
  let pos = 0;
  const line = (): string => {
    let end = pos;
    while (end < data.length && data[end] !== 0x0a) end++;
    if (end >= data.length) fail("malformed", "the tlog-proof ends before its checkpoint");
    const l = fromUTF8(data.subarray(pos, end));
    if (l === undefined) fail("malformed", "the tlog-proof is not valid UTF-8");
    pos = end + 1;
    return l;
  };
  if (line() !== HEADER) fail("malformed", `the tlog-proof does not start with the line ${HEADER}`);
  let l = line();
  let extra: Uint8Array | undefined;
  if (l.startsWith("extra ")) {
    extra = base64Strict(l.slice(6)) ?? fail("malformed", "the tlog-proof's extra line is not canonical base64");
    l = line();
  }
  if (!l.startsWith("index ")) fail("malformed", "the tlog-proof has no index line");
  const index = parseUint64(l.slice(6)) ?? fail("malformed", "the tlog-proof's index is not a canonical decimal below 2^64");
  const hashes: Uint8Array[] = [];
  for (;;) {
    l = line();
    if (l === "") break;
    const h = base64Strict(l);
    if (!h || h.length !== 32) fail("malformed", "a tlog-proof hash is not the canonical base64 of 32 bytes");
    hashes.push(h);
  }
  const checkpoint = data.subarray(pos);
  if (checkpoint.length === 0 || checkpoint[checkpoint.length - 1] !== 0x0a) fail("malformed", "the tlog-proof's checkpoint does not end in a newline");
  if (checkpoint.length > MAX_CHECKPOINT_BYTES) fail("malformed", "the tlog-proof's checkpoint is too large");
  if (checkpoint.includes(0x0d)) fail("malformed", "the tlog-proof has a carriage return");
  return extra === undefined ? { index, hashes, checkpoint } : { index, hashes, checkpoint, extra };
}

/**
 * verifyReceipt verifies a tlog-proof receipt against the log's note
 * verifier key (whose name is the log origin):
 *
 * 1. it is a canonical tlog-proof (parseTLogProof) with an extra line;
 * 2. its checkpoint verifies with the log key (verifyCheckpoint);
 * 3. index < the checkpoint's size, and the RFC 6962 inclusion proof of
 *    SHA-256(0x00 ‖ extra) at index leads to the checkpoint's root hash;
 * 4. the extra data is a valid govlog entry (parseEntry).
 *
 * Witness cosignatures are not checked here: see Policy. It throws a
 * VerificationError.
 */
export async function verifyReceipt(tlogProof: Input, logKey: NoteVerifier): Promise<Verified> {
  const p = parseTLogProof(tlogProof);
  return verifyParsed(p, logKey);
}

async function verifyParsed(p: TLogProof, logKey: NoteVerifier): Promise<Verified> {
  if (p.extra === undefined) fail("malformed", "the tlog-proof has no extra line, so it does not carry the entry");
  const checkpoint = await verifyCheckpoint(p.checkpoint, logKey);
  if (p.index >= checkpoint.size) fail("bad_proof", `index ${p.index} is not below the checkpoint size ${checkpoint.size}`);
  const lh = leafHash(p.extra);
  verifyInclusion(p.index, checkpoint.size, lh, p.hashes, checkpoint.rootHash);
  let entry: Entry;
  try {
    entry = parseEntry(p.extra);
  } catch (e) {
    throw new VerificationError("bad_entry", `entry ${p.index}: ${(e as Error).message}`);
  }
  return { checkpoint, index: p.index, leafHash: lh, leaf: p.extra, entry, inclusionProof: p.hashes };
}

const RECEIPT_FIELDS = ["id", "index", "leaf_hash", "entry", "checkpoint", "inclusion_proof", "tlog_proof"];

/**
 * verifyReceiptJSON verifies a JSON receipt of the REST API: strict JSON
 * (valid UTF-8, no duplicate members, no null) holding an object with
 * exactly the members id, index, leaf_hash, entry, checkpoint,
 * inclusion_proof, tlog_proof and optionally artifact (a string, not
 * checked here: see verifyArtifact); its tlog_proof verifies as
 * verifyReceipt; and every other member says exactly what the tlog_proof
 * says (index an integer literal, the byte fields in canonical base64). It
 * throws a VerificationError.
 */
export async function verifyReceiptJSON(body: Input, logKey: NoteVerifier): Promise<Verified> {
  const bytes = asBytes(body);
  if (bytes.length > MAX_RECEIPT_BYTES) fail("malformed", `the receipt is ${bytes.length} bytes, the limit is ${MAX_RECEIPT_BYTES}`);
  const v = parseJSON(bytes);
  if (!(v instanceof JSONObject)) fail("malformed", "the receipt is not a JSON object");
  for (const f of RECEIPT_FIELDS) if (!v.has(f)) fail("malformed", `the receipt has no ${f}`);
  for (const [k, m] of v.members) {
    if (k !== "artifact" && !RECEIPT_FIELDS.includes(k)) fail("malformed", `the receipt has an unknown member ${JSON.stringify(k)}`);
    if (m === null) fail("malformed", `the receipt's ${k} is null`);
  }
  const str = (k: string): string => {
    const s = v.get(k);
    if (typeof s !== "string") fail("malformed", `the receipt's ${k} is not a string`);
    return s;
  };
  const id = str("id");
  const indexV = v.get("index");
  const index = indexV instanceof JSONNumber ? parseUint64(indexV.raw) : undefined;
  if (index === undefined) fail("malformed", "the receipt's index is not an integer below 2^64");
  const leafHashText = str("leaf_hash");
  const entryText = str("entry");
  const checkpointText = str("checkpoint");
  const proofV = v.get("inclusion_proof");
  if (!Array.isArray(proofV) || proofV.some((h) => typeof h !== "string")) fail("malformed", "the receipt's inclusion_proof is not an array of strings");
  const tlogText = str("tlog_proof");
  if (v.has("artifact")) str("artifact");

  const p = parseTLogProof(tlogText);
  const entry = base64Strict(entryText) ?? fail("malformed", "the receipt's entry is not canonical base64");
  const lh = base64Strict(leafHashText) ?? fail("malformed", "the receipt's leaf_hash is not canonical base64");
  if (index !== p.index) fail("mismatch", `the receipt's index ${index} is not the tlog_proof's ${p.index}`);
  if (p.extra === undefined || !equalBytes(entry, p.extra)) fail("mismatch", "the receipt's entry is not the tlog_proof's");
  if (!equalBytes(lh, leafHash(entry))) fail("mismatch", "the entry does not hash to leaf_hash");
  if (checkpointText !== fromUTF8(p.checkpoint)) fail("mismatch", "the receipt's checkpoint is not the tlog_proof's");
  if (proofV.length !== p.hashes.length) fail("mismatch", `the receipt's inclusion_proof has ${proofV.length} hashes, the tlog_proof ${p.hashes.length}`);
  proofV.forEach((s, i) => {
    const h = base64Strict(s as string) ?? fail("malformed", `the receipt's inclusion_proof[${i}] is not canonical base64`);
    if (!equalBytes(h, p.hashes[i]!)) fail("mismatch", `the receipt's inclusion_proof[${i}] is not the tlog_proof's`);
  });
  const verified = await verifyParsed(p, logKey);
  if (id !== verified.entry.id) fail("mismatch", `the receipt's id ${JSON.stringify(id)} is not its entry's, ${JSON.stringify(verified.entry.id)}`);
  return verified;
}

/**
 * verifyAnyReceipt verifies a receipt given as a tlog-proof or as a JSON
 * receipt (told apart by a leading "{").
 */
export function verifyAnyReceipt(receipt: Input, logKey: NoteVerifier): Promise<Verified> {
  const b = asBytes(receipt);
  let i = 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  return b[i] === 0x7b /* { */ ? verifyReceiptJSON(b, logKey) : verifyReceipt(b, logKey);
}
