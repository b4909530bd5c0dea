// C2SP tlog-checkpoint in a signed note, verified as the Go package
// verifier does (verifier.Checkpoint, verifier.Consistency).

import { asBytes, base64, base64Strict, equalBytes, parseUint64, type Input } from "./bytes.js";
import { sha256 } from "./crypto.js";
import { fail } from "./errors.js";
import { verifyConsistency } from "./merkle.js";
import { openNote, type Note, type NoteVerifier } from "./note.js";

/** MAX_CHECKPOINT_BYTES bounds a checkpoint note with its cosignatures. */
export const MAX_CHECKPOINT_BYTES = 16 << 10;

/** EMPTY_ROOT is the root hash of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT = sha256(new Uint8Array(0));

/** A verified checkpoint. */
export interface Checkpoint {
  /** origin is the log's origin: the log key's name. */
  readonly origin: string;
  readonly size: bigint;
  readonly rootHash: Uint8Array;
  /** note is the signed note as received, cosignatures included. */
  readonly note: Uint8Array;
  /** opened is the note as opened with the log key. */
  readonly opened: Note;
}

/**
 * verifyCheckpoint verifies a checkpoint note signed by the log key (whose
 * name is the log's origin) and returns it parsed:
 *
 * 1. it is at most 16 KiB;
 * 2. it opens as a signed note with the log key (openNote), and every
 *    signature line, checked or not, is canonical base64;
 * 3. its text is exactly "<origin>\n<size>\n<root hash>\n": the origin is
 *    the key's name, the size a decimal without leading zeros below 2^64,
 *    the root hash the canonical base64 of 32 bytes, SHA-256("") when the
 *    size is 0; no extension lines.
 *
 * It throws a VerificationError: `malformed`, `bad_signature` or
 * `bad_checkpoint`.
 */
export async function verifyCheckpoint(input: Input, logKey: NoteVerifier): Promise<Checkpoint> {
  const note = asBytes(input);
  if (note.length > MAX_CHECKPOINT_BYTES) {
    fail("malformed", `the checkpoint is ${note.length} bytes, the limit is ${MAX_CHECKPOINT_BYTES}`);
  }
  const opened = await openNote(note, [logKey]);
  for (const s of [...opened.sigs, ...opened.unverified]) {
    if (!base64Strict(s.base64)) fail("malformed", `the checkpoint signature by ${s.name} is not canonical base64`);
  }
  const lines = opened.text.split("\n");
  if (lines.length !== 4 || lines[3] !== "") fail("bad_checkpoint", "the checkpoint is not three lines (extension lines are not allowed)");
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (origin !== logKey.name) fail("bad_checkpoint", `the checkpoint's origin is ${JSON.stringify(origin)}, not ${JSON.stringify(logKey.name)}`);
  const size = parseUint64(sizeText);
  if (size === undefined) fail("bad_checkpoint", "the checkpoint's size is not a canonical decimal below 2^64");
  const rootHash = base64Strict(rootText);
  if (!rootHash || rootHash.length !== 32) fail("bad_checkpoint", "the checkpoint's root hash is not the canonical base64 of 32 bytes");
  if (size === 0n && !equalBytes(rootHash, EMPTY_ROOT)) fail("bad_checkpoint", 'an empty tree has root SHA-256("")');
  return { origin, size, rootHash, note, opened };
}

/**
 * verifySignedConsistency verifies two checkpoints signed by the log key and
 * the RFC 6962 consistency proof from the older to the newer (as the Go
 * verifier.Consistency): the new one is not smaller, checkpoints of one size
 * have one root and an empty proof, and the proof verifies. It returns both
 * checkpoints. It throws a VerificationError; `inconsistent` is evidence
 * that the log forked (keep both notes).
 */
export async function verifySignedConsistency(
  oldNote: Input,
  newNote: Input,
  proof: readonly Uint8Array[],
  logKey: NoteVerifier,
): Promise<[Checkpoint, Checkpoint]> {
  const older = await verifyCheckpoint(oldNote, logKey);
  const newer = await verifyCheckpoint(newNote, logKey);
  if (older.size > newer.size) fail("malformed", `the new checkpoint (size ${newer.size}) is smaller than the old one (size ${older.size})`);
  proof.forEach((h, i) => {
    if (h.length !== 32) fail("malformed", `consistency proof hash ${i} is ${h.length} bytes, want 32`);
  });
  if (older.size === newer.size && proof.length > 0) fail("bad_proof", "the consistency proof between checkpoints of the same size must be empty");
  verifyConsistency(older.size, newer.size, proof, older.rootHash, newer.rootHash);
  return [older, newer];
}

/** checkpointText is "origin size root" for printing. */
export function checkpointText(c: Checkpoint): string {
  return `${c.origin} ${c.size} ${base64(c.rootHash)}`;
}
