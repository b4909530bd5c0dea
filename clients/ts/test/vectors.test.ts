// The verification vectors of testdata/verify, which the Go and Python
// verifiers run too: every case must get its verdict. And the schema
// vectors of testdata/decisions, executions and entries.

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { testdata } from "./helpers.js";
import {
  JWKS,
  authorize,
  base64,
  canonicalJSON,
  parseCosignatureKey,
  parseDecision,
  parseEntry,
  parseExecution,
  parseNoteKey,
  parsePolicy,
  parseRFC3339,
  verifyArtifact,
  verifyKeyBound,
  verifyBundle,
  type KeyBoundOptions,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
  verifyReceipt,
  verifyReceiptJSON,
  verifySignedConsistency,
  FieldError,
  JSONNumber,
  JSONObject,
  parseJSON,
  VerificationError,
  type JSONValue,
} from "../src/index.js";

/** readVectors reads a vector file, with integers beyond 2^53 as bigint (JSON.parse would round them). */
function readVectors(path: string): unknown {
  const plain = (v: JSONValue): unknown => {
    if (v instanceof JSONNumber) return Number.isSafeInteger(v.value) || !/^-?[0-9]+$/.test(v.raw) ? v.value : BigInt(v.raw);
    if (Array.isArray(v)) return v.map(plain);
    if (v instanceof JSONObject) return Object.fromEntries(v.members.map(([k, m]) => [k, plain(m)]));
    return v;
  };
  return plain(parseJSON(read(path)));
}


function read(path: string): string {
  return readFileSync(`${testdata}/${path}`, "utf8");
}

// A case of a vector file; see testdata/verify/README.md.
interface Case {
  name: string;
  want: "ok" | "fail";
  log_key?: string;
  jwks?: string;
  audience?: string;
  now?: number;
  checkpoint?: string;
  checkpoint_base64?: string;
  policy?: string;
  format?: string;
  receipt?: string;
  receipt_base64?: string;
  token?: string;
  leaf?: string;
  leaf_base64?: string;
  input?: string;
  input_base64?: string;
  old?: string;
  new?: string;
  proof?: string[];
  type?: string;
  index?: number;
  size?: number;
  size1?: number;
  size2?: number;
  leaf_hash?: string;
  root?: string;
  root1?: string;
  root2?: string;
  authorize?: { action: string; resource: string; subject?: string };
  expect?: Record<string, unknown> & { fields?: Record<string, string> };
  canonical?: string;
  key_receipt?: string;
  bundle?: string;
  /** key_receipt_bytes is a mangled key_receipt (not in the files). */
  key_receipt_bytes?: Uint8Array;
  mangle?: { xor: number[]; delete?: boolean; field?: string };
}

const b64 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "base64"));
const text = (s?: string, raw?: string): Uint8Array | undefined =>
  s !== undefined ? new TextEncoder().encode(s) : raw !== undefined ? b64(raw) : undefined;

/** primaryInput is the input of a case that mangle changes. */
function primaryInput(family: string, c: Case): Uint8Array | undefined {
  switch (family) {
    case "checkpoints":
    case "policies":
      return text(c.checkpoint, c.checkpoint_base64);
    case "receipts":
      return text(c.receipt, c.receipt_base64);
    case "artifacts":
    case "key-artifacts":
      return text(c.token ?? ""); // an empty token is left out of the file
    case "entries":
      return text(c.leaf, c.leaf_base64);
    case "jcs":
      return text(c.input, c.input_base64);
  }
  return undefined;
}

/** Sub is one case to run: a case of the file, or one of its manglings. */
interface Sub {
  name: string;
  want: "ok" | "fail";
  c: Case;
  input: Uint8Array | undefined;
}

function expand(family: string, c: Case): Sub[] {
  const input = primaryInput(family, c);
  const out: Sub[] = [{ name: c.name, want: c.want, c, input }];
  if (!c.mangle || !input) return out;
  const field = c.mangle.field;
  if (field !== undefined && (field !== "key_receipt" || c.key_receipt === undefined)) throw new Error(`${c.name}: mangle of unknown field ${field}`);
  const target = field === undefined ? input : new TextEncoder().encode(c.key_receipt!);
  // A mangled key receipt is not valid UTF-8 in general: it is kept as bytes.
  const sub = (name: string, m: Uint8Array): Sub =>
    field === undefined ? { name, want: "fail", c, input: m } : { name, want: "fail", c: { ...c, key_receipt_bytes: m } as Case, input };
  for (let i = 0; i < target.length; i++) {
    for (const x of c.mangle.xor) {
      const m = target.slice();
      m[i]! ^= x;
      out.push(sub(`${c.name}: byte ${i} xor 0x${x.toString(16).padStart(2, "0")}`, m));
    }
    if (c.mangle.delete) {
      const m = new Uint8Array(target.length - 1);
      m.set(target.subarray(0, i));
      m.set(target.subarray(i + 1), i);
      out.push(sub(`${c.name}: byte ${i} deleted`, m));
    }
  }
  return out;
}

function expectEqual(what: string, got: unknown, want: unknown): void {
  if (want !== undefined && got !== want) throw new Error(`${what} is ${String(got)}, want ${String(want)}`);
}

const big = (n: unknown): bigint | undefined => (n === undefined ? undefined : BigInt(n as number | bigint));

const families: Record<string, (c: Case, input: Uint8Array | undefined) => Promise<void>> = {
  async checkpoints(c, input) {
    const cp = await verifyCheckpoint(input!, parseNoteKey(c.log_key!));
    expectEqual("origin", cp.origin, c.expect?.["origin"]);
    expectEqual("size", cp.size, big(c.expect?.["size"]));
    expectEqual("root hash", base64(cp.rootHash), c.expect?.["root_hash"]);
  },
  async policies(c, input) {
    const p = parsePolicy(c.policy!);
    if (!input) return;
    await verifyCheckpoint(input, parseNoteKey(c.log_key!));
    await p.check(input);
  },
  async proofs(c) {
    const proof = (c.proof ?? []).map(b64);
    if (c.type === "inclusion") verifyInclusion(BigInt(c.index!), BigInt(c.size!), b64(c.leaf_hash!), proof, b64(c.root!));
    else verifyConsistency(BigInt(c.size1!), BigInt(c.size2!), proof, b64(c.root1!), b64(c.root2!));
  },
  async consistency(c) {
    await verifySignedConsistency(c.old!, c.new!, (c.proof ?? []).map(b64), parseNoteKey(c.log_key!));
  },
  async receipts(c, input) {
    const key = parseNoteKey(c.log_key!);
    const v = c.format === "json" ? await verifyReceiptJSON(input!, key) : await verifyReceipt(input!, key);
    const e = c.expect ?? {};
    expectEqual("index", v.index, big(e["index"]));
    expectEqual("kind", v.entry.kind, e["kind"]);
    expectEqual("id", v.entry.id, e["id"]);
    expectEqual("leaf hash", base64(v.leafHash), e["leaf_hash"]);
    expectEqual("size", v.checkpoint.size, big(e["size"]));
    expectEqual("root hash", base64(v.checkpoint.rootHash), e["root_hash"]);
  },
  async artifacts(c, input) {
    const key = parseNoteKey(c.log_key!);
    const jwks = JWKS.parse(c.jwks!);
    const opts: Parameters<typeof verifyArtifact>[2] = { origin: key.name, audience: c.audience ?? "", now: c.now! };
    if (c.receipt !== undefined) opts.receipt = await verifyReceipt(c.receipt, key);
    const claims = await verifyArtifact(new TextDecoder().decode(input!), jwks, opts);
    if (c.authorize) authorize(claims, c.authorize);
    const want = c.expect?.["claims"];
    if (want !== undefined) expectEqual("claims", new TextDecoder().decode(b64url(new TextDecoder().decode(input!).split(".")[1]!)), want);
  },
  async "key-artifacts"(c, input) {
    const key = parseNoteKey(c.log_key!);
    const opts: KeyBoundOptions = { audience: c.audience ?? "", now: c.now! };
    if (c.policy !== undefined) opts.policy = parsePolicy(c.policy);
    if (c.authorize) opts.expect = c.authorize;
    await verifyKeyBound(new TextDecoder().decode(input!), c.key_receipt_bytes ?? c.key_receipt ?? "", key, opts);
    const want = c.expect?.["claims"];
    if (want !== undefined) expectEqual("claims", new TextDecoder().decode(b64url(new TextDecoder().decode(input!).split(".")[1]!)), want);
  },
  async bundles(c) {
    const key = parseNoteKey(c.log_key!);
    const b = await verifyBundle(c.bundle!, key, c.policy !== undefined ? parsePolicy(c.policy) : undefined);
    expectEqual("size", b.checkpoint.size, big(c.expect?.["size"]));
    expectEqual("entries", BigInt(b.entries.length), big(c.expect?.["entries"]));
  },
  async entries(c, input) {
    const e = parseEntry(input!);
    const f = c.expect?.fields;
    if (!f) return;
    const got: Record<string, string> = { kind: e.kind, id: e.id, submitter: e.submitter, logged_at: e.loggedAt };
    if (e.authorizedUntil) got["authorized_until"] = e.authorizedUntil;
    const d = e.decision;
    if (d) {
      Object.assign(got, { outcome: d.outcome, subject: d.subject, action: d.action, policy_id: d.policyId, decided_at: d.decidedAt });
      if (d.resource) got["resource"] = d.resource;
      if (d.parentId) got["parent_id"] = d.parentId;
    }
    if (d?.executor) got["executor"] = d.executor;
    const x = e.execution;
    if (x) Object.assign(got, { decision_id: x.decisionId, status: x.status, at: x.at });
    if (x?.claimId) got["claim_id"] = x.claimId;
    if (e.artifactDigest) got["artifact_digest"] = e.artifactDigest;
    if (e.violation) got["violation"] = e.violation;
    const r = e.revocation;
    if (r) Object.assign(got, { decision_id: r.decisionId, revoked_at: r.revokedAt });
    assert.deepEqual(got, f);
  },
  async jcs(c, input) {
    const out = canonicalJSON(input!);
    expectEqual("canonical form", out, c.canonical);
  },
};

function b64url(s: string): Uint8Array {
  return b64(s.replace(/-/g, "+").replace(/_/g, "/"));
}

// With GOVLOG_VERDICTS set to a file name, every case's verdict is written
// there, one "family<TAB>case<TAB>ok|fail" line each, as the Go and Python
// vector tests do: make test-compare checks that the three are the same.
const verdicts: string[] = [];
after(() => {
  const path = process.env["GOVLOG_VERDICTS"];
  if (path) writeFileSync(path, verdicts.join(""));
});

for (const family of Object.keys(families)) {
  test(`verify/${family}.json`, async () => {
    const file = readVectors(`verify/${family}.json`) as { cases: Case[] };
    const wrong: string[] = [];
    let n = 0;
    for (const c of file.cases) {
      for (const sub of expand(family, c)) {
        n++;
        let err: unknown;
        try {
          await families[family]!(sub.c, sub.input);
        } catch (e) {
          err = e;
        }
        if (err !== undefined && !(err instanceof VerificationError) && sub.want === "fail") {
          // A failure must be a VerificationError (or a thrown key error), not a crash.
          if (!(err instanceof Error) || /is not a function|Cannot read|undefined/.test(err.message)) wrong.push(`${sub.name}: crashed: ${String(err)}`);
        }
        verdicts.push(`${family}\t${sub.name}\t${err === undefined ? "ok" : "fail"}\n`);
        if (sub.want === "ok" && err !== undefined) wrong.push(`${sub.name}: want ok, got ${String(err)}`);
        if (sub.want === "fail" && err === undefined) wrong.push(`${sub.name}: want fail, verified`);
      }
    }
    assert.ok(n > 0);
    assert.deepEqual(wrong, [], `${wrong.length} of ${n} cases disagree`);
  });
}

const NOW = parseRFC3339("2026-11-25T18:00:00Z")!;

test("decisions/ and executions/ vectors", () => {
  for (const [dir, parse] of [
    ["decisions", parseDecision],
    ["executions", parseExecution],
  ] as const) {
    const names = JSON.parse(read(`${dir}/invalid.json`)) as { name: string; body?: string; body_base64?: string; want_code: string; want_field?: string }[];
    for (const v of names) {
      const body = v.body !== undefined ? v.body : b64(v.body_base64!);
      assert.throws(
        () => parse(body, NOW),
        (e: unknown) => {
          if (v.want_field) return e instanceof FieldError && e.field === v.want_field;
          return e instanceof VerificationError;
        },
        `${dir}/invalid.json ${v.name}`,
      );
    }
  }
  for (const name of ["minimal", "deny", "full", "escapes", "numbers", "limits", "id-charset", "empty-collections"]) {
    assert.equal(parseDecision(read(`decisions/valid/${name}.json`), NOW).canonical, read(`decisions/valid/${name}.canonical`), name);
  }
  for (const name of ["minimal", "full", "failed", "aborted"]) {
    assert.equal(parseExecution(read(`executions/valid/${name}.json`), NOW).canonical, read(`executions/valid/${name}.canonical`), name);
  }
});

test("entries/ vectors", async () => {
  const { leafHash, hex } = await import("./helpers.js");
  for (const v of JSON.parse(read("entries/valid.json")) as { name: string; leaf: string; leaf_hash: string; kind: string }[]) {
    assert.equal(parseEntry(v.leaf).kind, v.kind, v.name);
    assert.equal(hex(leafHash(v.leaf)), v.leaf_hash, v.name);
  }
  for (const v of JSON.parse(read("entries/invalid.json")) as { name: string; leaf: string }[]) {
    assert.throws(() => parseEntry(v.leaf), VerificationError, v.name);
  }
});

test("a string input with a lone surrogate is refused (no UTF-8 holds one)", () => {
  assert.throws(() => parseJSON('"\uD800"'), VerificationError);
  assert.throws(() => parseJSON('{"a":"x\uDC00"}'), VerificationError);
  assert.equal(canonicalJSON('"\uD83D\uDE00"'), '"😀"'); // a pair is one character
});

test("keys", () => {
  const k = parseNoteKey(read("keys/log.vkey"));
  assert.equal(k.name, "example.com/govlog");
  assert.throws(() => parseCosignatureKey(read("keys/log.vkey").trim()), VerificationError);
});
