// What the page checks itself, with the TypeScript verifier of clients/ts.
// Each step is recorded as a Check, shown to the person as a list; a step
// that fails makes the whole verdict FAILED.

import {
  Policy,
  VerificationError,
  base64,
  cosignatureTime,
  leafHash,
  parseEntry,
  parseNoteKey,
  verifyCheckpoint,
  verifyInclusion,
  verifySignedConsistency,
  type Checkpoint,
  type NoteVerifier,
} from "../../../clients/ts/src/index.js";
import { NeedToken, getBytes, getJSON, getText, q, type LogInfo } from "./api.js";

/** A step of a verification and its outcome. */
export interface Check {
  readonly ok: boolean | undefined; // undefined: not applicable / skipped
  readonly what: string;
}

/** Checks collects the steps of one verification. */
export class Checks {
  readonly list: Check[] = [];
  pass(what: string): void {
    this.list.push({ ok: true, what });
  }
  fail(what: string): void {
    this.list.push({ ok: false, what });
  }
  skip(what: string): void {
    this.list.push({ ok: undefined, what });
  }
  get failed(): boolean {
    return this.list.some((c) => c.ok === false);
  }
}

export function errText(e: unknown): string {
  if (e instanceof VerificationError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** A witness that cosigned a checkpoint, with the time it says it did. */
export interface Cosigner {
  readonly name: string;
  readonly time: Date | undefined;
}

/** The log's trust anchors, as the page got them. */
export interface Trust {
  readonly info: LogInfo;
  readonly key: NoteVerifier;
  readonly policy: Policy | undefined;
}

export async function loadTrust(): Promise<Trust> {
  const info = await getJSON<LogInfo>("/v1/log");
  const key = parseNoteKey(info.verifier_key);
  const policy = info.witness_policy ? Policy.parse(info.witness_policy) : undefined;
  return { info, key, policy };
}

/** A checkpoint checked with the log key and the witness policy. */
export interface CheckedCheckpoint {
  readonly text: string;
  readonly checkpoint: Checkpoint | undefined;
  readonly cosigners: Cosigner[];
}

/** checkCheckpoint verifies a checkpoint note: the log's signature, then the witnesses' cosignatures. */
export async function checkCheckpoint(text: string, trust: Trust, checks: Checks): Promise<CheckedCheckpoint> {
  let cp: Checkpoint;
  try {
    cp = await verifyCheckpoint(text, trust.key);
  } catch (e) {
    checks.fail(`checkpoint signature by the log key ${trust.key.name}: ${errText(e)}`);
    return { text, checkpoint: undefined, cosigners: [] };
  }
  checks.pass(`checkpoint of size ${cp.size} signed by the log key ${trust.key.name} (Ed25519, key ID ${hex8(trust.key.keyId)})`);
  const cosigners: Cosigner[] = [];
  if (trust.policy) {
    try {
      const ws = await trust.policy.cosigners(text);
      for (const w of ws) {
        const line = [...cp.opened.sigs, ...cp.opened.unverified].find((s) => s.name === w.key.name && s.keyId === w.key.keyId);
        const t = line ? cosignatureTime(line.base64) : undefined;
        cosigners.push({ name: w.name, time: t === undefined ? undefined : new Date(Number(t) * 1000) });
      }
      if (await trust.policy.satisfied(text)) {
        checks.pass(`witness policy satisfied: cosigned by ${cosigners.map((c) => c.name).join(", ") || "no witness needed"}`);
      } else {
        checks.fail(`witness policy not satisfied: cosigned by ${cosigners.map((c) => c.name).join(", ") || "no witness of the policy"}`);
      }
    } catch (e) {
      checks.fail(`witness cosignatures: ${errText(e)}`);
    }
  } else {
    checks.skip("no witness policy is configured for this log: the checkpoint rests on the log's signature alone");
  }
  return { text, checkpoint: cp, cosigners };
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** tilePath is the C2SP tlog-tiles path of the entry bundle holding entry index in a tree of size. */
export function tilePath(index: bigint, size: bigint): string {
  const n = index / 256n;
  let digits = n.toString().padStart(3 * Math.ceil(Math.max(n.toString().length, 1) / 3), "0");
  const parts: string[] = [];
  while (digits.length > 3) {
    parts.push("x" + digits.slice(0, 3));
    digits = digits.slice(3);
  }
  parts.push(digits);
  let p = "/tile/entries/" + parts.join("/");
  const width = size - n * 256n;
  if (width < 256n) p += ".p/" + width.toString();
  return p;
}

/** bundleEntries splits a tlog-tiles entry bundle: each entry is a big-endian uint16 length and that many bytes. */
export function bundleEntries(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < data.length) {
    if (i + 2 > data.length) throw new Error("the entry bundle ends inside a length prefix");
    const n = (data[i]! << 8) | data[i + 1]!;
    i += 2;
    if (i + n > data.length) throw new Error("the entry bundle ends inside an entry");
    out.push(data.subarray(i, i + n));
    i += n;
    if (out.length > 256) throw new Error("the entry bundle holds more than 256 entries");
  }
  return out;
}

/** The outcome of verifying one entry in the browser. */
export interface EntryVerification {
  readonly checks: Checks;
  readonly trust: Trust | undefined;
  readonly checkpoint: CheckedCheckpoint | undefined;
  readonly leaf: Uint8Array | undefined;
  readonly leafHash: Uint8Array | undefined;
  /** pending: the latest checkpoint does not cover the entry yet. */
  readonly pending: boolean;
}

/**
 * verifyEntry checks entry index as an auditor would, from the log's
 * public read API: the latest checkpoint (signature, witnesses), the
 * entry's bytes from the tlog-tiles entry bundle, their RFC 6962 leaf hash,
 * the inclusion proof of that hash in the checkpoint's tree, and the
 * entry's schema.
 */
export async function verifyEntry(index: bigint): Promise<EntryVerification> {
  const checks = new Checks();
  let trust: Trust;
  try {
    trust = await loadTrust();
    checks.pass(`log key ${trust.key.name} read from /v1/log`);
    checkKeyContinuity(trust, checks);
  } catch (e) {
    if (e instanceof NeedToken) throw e; // the page asks for a token
    checks.fail(`the log's key (/v1/log): ${errText(e)}`);
    return { checks, trust: undefined, checkpoint: undefined, leaf: undefined, leafHash: undefined, pending: false };
  }
  const cp = await checkCheckpoint(await getText("/v1/checkpoint"), trust, checks);
  const none = { checks, trust, checkpoint: cp, leaf: undefined, leafHash: undefined, pending: false };
  if (!cp.checkpoint) return none;
  const size = cp.checkpoint.size;
  if (index >= size) {
    checks.skip(`entry ${index} is not covered by the latest checkpoint (size ${size}) yet`);
    return { ...none, pending: true };
  }
  let leaf: Uint8Array;
  const path = tilePath(index, size);
  try {
    const entries = bundleEntries(await getBytes(path));
    const i = Number(index % 256n);
    if (entries.length <= i) throw new Error(`the entry bundle holds ${entries.length} entries, entry ${i} of it is missing`);
    leaf = entries[i]!;
    checks.pass(`entry bytes read from the tile ${path} (${leaf.length} bytes)`);
  } catch (e) {
    checks.fail(`entry bytes from the tile ${path}: ${errText(e)}`);
    return none;
  }
  const lh = leafHash(leaf);
  checks.pass(`entry hash computed here: SHA-256(0x00 ‖ entry) = ${base64(lh)}`);
  try {
    const proof = await getJSON<{ hashes: string[] }>(`/v1/proofs/inclusion${q({ index, tree_size: size })}`);
    const hashes = proof.hashes.map((b) => decodeB64(b));
    verifyInclusion(index, size, lh, hashes, cp.checkpoint.rootHash);
    checks.pass(`inclusion proof (${hashes.length} hashes): the entry hash is leaf ${index} of the tree of size ${size} with root ${base64(cp.checkpoint.rootHash)}`);
  } catch (e) {
    checks.fail(`inclusion proof of entry ${index} in the checkpoint of size ${size}: ${errText(e)}`);
  }
  try {
    parseEntry(leaf);
    checks.pass("entry is a valid govlog entry (RFC 8785 canonical JSON, every field as the wire contract says)");
  } catch (e) {
    const kind = entryKind(leaf);
    if (["decision", "execution", "revocation", "key"].includes(kind)) checks.fail(`entry format: ${errText(e)}`);
    else checks.skip(`entry format of a ${kind} entry: not checked by this version of the verifier`);
  }
  return { checks, trust, checkpoint: cp, leaf, leafHash: lh, pending: false };
}

/** entryKind names the kind of an entry from its top-level members. */
export function entryKind(leaf: Uint8Array | Record<string, unknown>): string {
  let o: Record<string, unknown>;
  if (leaf instanceof Uint8Array) {
    try {
      o = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(leaf));
    } catch {
      return "unreadable";
    }
  } else o = leaf;
  for (const k of ["decision", "execution", "revocation", "key"]) if (o && typeof o === "object" && k in o) return k;
  return "unknown";
}

export function decodeB64(s: string): Uint8Array {
  if (typeof s !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new Error("not base64");
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A checkpoint this browser verified before, kept in localStorage per origin. */
const SEEN_KEY = "govlog-seen-checkpoint:";

export function seenCheckpoint(origin: string): string | undefined {
  try {
    return localStorage.getItem(SEEN_KEY + origin) ?? undefined;
  } catch {
    return undefined;
  }
}

export function rememberCheckpoint(origin: string, text: string): void {
  try {
    localStorage.setItem(SEEN_KEY + origin, text);
  } catch {
    // storage off: nothing to remember
  }
}

/**
 * checkConsistency verifies that the newer checkpoint extends the older
 * one: both signed by the log key, and the RFC 6962 consistency proof
 * between them that the log serves.
 */
export async function checkConsistency(older: string, newer: string, trust: Trust, checks: Checks): Promise<boolean> {
  try {
    const o = await verifyCheckpoint(older, trust.key);
    const n = await verifyCheckpoint(newer, trust.key);
    if (o.size === 0n || o.size > n.size) {
      if (o.size > n.size) {
        checks.fail(`the earlier checkpoint (size ${o.size}) is larger than the latest (size ${n.size}): the log went back`);
        return false;
      }
      checks.pass("the earlier checkpoint is of the empty tree: every tree extends it");
      return true;
    }
    const proof =
      o.size === n.size ? [] : (await getJSON<{ hashes: string[] }>(`/v1/proofs/consistency${q({ from: o.size, to: n.size })}`)).hashes.map(decodeB64);
    await verifySignedConsistency(older, newer, proof, trust.key);
    checks.pass(`consistency proof (${proof.length} hashes): the tree of size ${n.size} extends the tree of size ${o.size} without changing any of its entries`);
    return true;
  } catch (e) {
    checks.fail(`consistency with the earlier checkpoint: ${errText(e)}`);
    return false;
  }
}

const KEY_SEEN = "govlog-seen-log-key";

/**
 * checkKeyContinuity compares the log key the server names with the one it
 * named on this browser's first visit (localStorage is per origin): a
 * server that swapped its key, to sign a rewritten history, fails here.
 * Someone who holds the key from elsewhere compares it with the one shown.
 */
export function checkKeyContinuity(trust: Trust, checks: Checks): void {
  let seen: string | null = null;
  try {
    seen = localStorage.getItem(KEY_SEEN);
    if (!seen) localStorage.setItem(KEY_SEEN, trust.info.verifier_key);
  } catch {
    // storage off
  }
  if (!seen) checks.skip("first visit of this browser: the log key is remembered, and later visits check it has not changed");
  else if (seen === trust.info.verifier_key) checks.pass("the log key is the one this browser saw on its first visit");
  else checks.fail(`the log key changed since this browser's first visit (it was ${seen}): a log cannot change its key without it being noticed`);
}
