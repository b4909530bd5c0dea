// govlog entries, decisions and execution reports: the schema of the wire
// contract, checked as the Go package log checks it (log.ParseEntry,
// log.ParseDecision, log.ParseExecution).

import { asBytes, base64urlStrict, fromUTF8, type Input } from "./bytes.js";
import { fail, FieldError } from "./errors.js";
import { canonicalize, JSONNumber, JSONObject, parseJSON, type JSONValue } from "./json.js";
import { addSeconds, compareInstants, parseRFC3339, parseUTC, type Instant } from "./time.js";

/** Limits of the wire contract. */
export const MAX_SUBMISSION_BYTES = 64 << 10;
export const MAX_CONTEXT_BYTES = 16 << 10;
export const MAX_ENTRY_BYTES = 65535;
export const MAX_FUTURE_SKEW_SECONDS = 300;
export const MAX_SEQUENCE = 2 ** 53 - 1;
export const MAX_REASONS = 32;

/** A validated decision. Optional members are "" (or 0) when absent. */
export interface Decision {
  readonly id: string;
  readonly outcome: "allow" | "deny";
  /** decidedAt is decided_at as written. */
  readonly decidedAt: string;
  readonly decidedAtInstant: Instant;
  readonly subject: string;
  readonly action: string;
  readonly resource: string;
  readonly policyId: string;
  readonly policyVersion: string;
  readonly policyDigest: string;
  readonly inputDigest: string;
  readonly reasons: readonly string[];
  readonly parentId: string;
  /** maxExecutions is an allow's max_executions, 0 when absent (the log then allows 1). */
  readonly maxExecutions: number;
  /** executor is an allow's executor, "" when absent. */
  readonly executor: string;
  readonly sequence: number;
  /** canonical is the decision as accepted: its RFC 8785 form. */
  readonly canonical: string;
}

/** A validated execution report. */
export interface Execution {
  readonly id: string;
  readonly decisionId: string;
  readonly status: "started" | "succeeded" | "failed" | "aborted";
  /** at is the report's at as written. */
  readonly at: string;
  readonly atInstant: Instant;
  readonly runtime: string;
  readonly resultDigest: string;
  /** claimId is a terminal report's claim_id, "" when absent. */
  readonly claimId: string;
  /** artifact is a submitted report's artifact, "" when absent; never in an entry. */
  readonly artifact: string;
  /** canonical is the report as accepted: its RFC 8785 form, without artifact. */
  readonly canonical: string;
}

/** A validated revocation (wire contract §2c). */
export interface Revocation {
  readonly id: string;
  readonly decisionId: string;
  /** revokedAt is revoked_at as written. */
  readonly revokedAt: string;
  readonly reason: string;
  readonly canonical: string;
}

/** The content of a key entry: an artifact signing key (wire contract §2e). */
export interface KeyContent {
  readonly kid: string;
  /** publicKey is the 32-byte Ed25519 public key of the jwk. */
  readonly publicKey: Uint8Array;
}

/** The violations the log records in an execution report's entry (wire contract §2b). */
export const VIOLATIONS = [
  "unknown_decision",
  "not_authorized",
  "artifact_missing",
  "artifact_invalid",
  "before_decision",
  "revoked",
  "expired",
  "wrong_executor",
  "uses_exhausted",
  "unknown_claim",
] as const;

/** A parsed and validated entry (a leaf of the log). */
export interface Entry {
  readonly kind: "decision" | "execution" | "revocation" | "key";
  /** id is the decision's, execution report's or revocation's id, or the key's kid. */
  readonly id: string;
  readonly submitter: string;
  /** loggedAt is logged_at as written: UTC, 9 fractional digits. */
  readonly loggedAt: string;
  /** authorizedUntil is an allow's authorized_until, "" otherwise. */
  readonly authorizedUntil: string;
  readonly decision?: Decision;
  readonly execution?: Execution;
  readonly revocation?: Revocation;
  readonly key?: KeyContent;
  /** artifactDigest is an execution entry's artifact_digest, "" when absent. */
  readonly artifactDigest?: string;
  /** violation is the violation the log recorded in an execution entry, "" when none. */
  readonly violation?: string;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
/** A key entry's kid: an id's characters, any of them first (an RFC 7638 thumbprint in base64url may start with "-" or "_"), 1 to 128 of them. */
const KID = /^[A-Za-z0-9._:-]{1,128}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const B64URL = /^[A-Za-z0-9_-]*$/;

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) i++;
    n++;
  }
  return n;
}

/** unsafeInteger: a number, as written, whose value or nearest double is an integer beyond ±2^53, or that no double holds. */
function unsafeInteger(n: JSONNumber): boolean {
  const f = n.value;
  if (!Number.isFinite(f) || Math.abs(f) > 2 ** 53) return true;
  if (Math.abs(f) < 2 ** 52) return false;
  // Exactly, from the literal: -?digits[.digits][e±digits].
  const m = /^-?([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(n.raw)!;
  const digits = (m[1]! + (m[2] ?? "")).replace(/^0+(?=.)/, "");
  const exp = Number(m[3] ?? "0") - (m[2]?.length ?? 0);
  let intDigits: string;
  if (exp >= 0) {
    intDigits = digits + "0".repeat(exp);
  } else {
    const frac = digits.slice(Math.max(0, digits.length + exp));
    if (/[^0]/.test(frac)) return false; // not an integer
    intDigits = digits.slice(0, Math.max(0, digits.length + exp)) || "0";
  }
  return BigInt(intDigits) > 2n ** 53n;
}

class Validator {
  err?: FieldError;
  constructor(
    private readonly kind: "decision" | "execution" | "revocation",
    private readonly obj: JSONObject,
    private readonly prefix = "",
  ) {}

  fail(field: string, reason: string): void {
    if (!this.err) {
      const f = [...field].length > 64 ? [...field].slice(0, 64).join("") + "…" : field;
      this.err = new FieldError(this.kind, this.prefix + f, reason);
    }
  }

  adopt(o: Validator): void {
    if (!this.err && o.err) this.err = o.err;
  }

  allowOnly(...fields: string[]): void {
    for (const [k] of this.obj.members) {
      if (!fields.includes(k)) {
        this.fail(k, "unknown field");
        return;
      }
    }
  }

  raw(field: string, required: boolean): JSONValue | undefined {
    if (!this.obj.has(field)) {
      if (required) this.fail(field, "is required");
      return undefined;
    }
    return this.obj.get(field);
  }

  str(field: string, required: boolean, max: number): string {
    const r = this.raw(field, required);
    if (r === undefined) return "";
    if (typeof r !== "string") {
      this.fail(field, "must be a string");
      return "";
    }
    const n = codePoints(r);
    if (n < 1 || n > max) this.fail(field, `must be 1 to ${max} characters, got ${n}`);
    return r;
  }

  id(field: string, required: boolean): string {
    const s = this.str(field, required, 128);
    if (s === "") return "";
    if (!ID.test(s)) this.fail(field, "must match ^[A-Za-z0-9][A-Za-z0-9._:-]*$");
    else if (s === "batch") this.fail(field, '"batch" is reserved');
    return s;
  }

  enumeration<T extends string>(field: string, allowed: readonly T[]): T {
    const s = this.str(field, true, 64);
    if (s === "") return "" as T;
    if ((allowed as readonly string[]).includes(s)) return s as T;
    this.fail(field, `must be one of ${allowed.join(", ")}`);
    return "" as T;
  }

  digest(field: string): string {
    const s = this.str(field, false, 71);
    if (s !== "" && !DIGEST.test(s)) this.fail(field, 'must be "sha256:" and 64 lowercase hex digits');
    return s;
  }

  timestamp(field: string, now: Instant): [string, Instant] {
    const s = this.str(field, true, 64);
    if (s === "") return ["", { sec: 0, nsec: 0 }];
    const t = parseRFC3339(s);
    if (!t) {
      this.fail(field, "must be an RFC 3339 timestamp");
      return ["", { sec: 0, nsec: 0 }];
    }
    if (compareInstants(t, addSeconds(now, MAX_FUTURE_SKEW_SECONDS)) > 0) this.fail(field, "is more than 5m0s in the future");
    return [s, t];
  }

  object(field: string, required: boolean): JSONObject | undefined {
    const r = this.raw(field, required);
    if (r === undefined) return undefined;
    if (!(r instanceof JSONObject)) {
      this.fail(field, "must be an object");
      return undefined;
    }
    return r;
  }

  reasons(field: string): string[] {
    const r = this.raw(field, false);
    if (r === undefined) return [];
    if (!Array.isArray(r)) {
      this.fail(field, "must be an array of strings");
      return [];
    }
    if (r.length > MAX_REASONS) {
      this.fail(field, `must have at most ${MAX_REASONS} items, got ${r.length}`);
      return [];
    }
    for (let i = 0; i < r.length; i++) {
      const item = r[i];
      const n = typeof item === "string" ? codePoints(item) : -1;
      if (typeof item !== "string") {
        this.fail(`${field}[${i}]`, "must be a string");
        return [];
      }
      if (n < 1 || n > 1024) {
        this.fail(`${field}[${i}]`, `must be 1 to 1024 characters, got ${n}`);
        return [];
      }
    }
    return r as string[];
  }

  context(field: string): void {
    const r = this.raw(field, false);
    if (r === undefined) return;
    if (!(r instanceof JSONObject)) {
      this.fail(field, "must be an object");
      return;
    }
    const size = new TextEncoder().encode(canonicalize(r)).length;
    if (size > MAX_CONTEXT_BYTES) {
      this.fail(field, `is ${size} bytes once canonicalized, the limit is ${MAX_CONTEXT_BYTES}`);
      return;
    }
    // Every number in it, as written.
    const work: JSONValue[] = [r];
    while (work.length > 0) {
      const v = work.pop()!;
      if (v instanceof JSONNumber) {
        if (unsafeInteger(v)) {
          this.fail(field, `holds ${v.raw}, an integer beyond ±2^53 that RFC 8785 cannot represent exactly`);
          return;
        }
      } else if (Array.isArray(v)) work.push(...v);
      else if (v instanceof JSONObject) for (const [, m] of v.members) work.push(m);
    }
  }

  /** integer reads an integer literal from 1 to max. */
  integer(field: string, max: number): number {
    const r = this.raw(field, false);
    if (r === undefined) return 0;
    if (!(r instanceof JSONNumber) || !/^[1-9][0-9]*$/.test(r.raw) || r.raw.length > 20 || Number(r.raw) > max) {
      this.fail(field, `must be an integer from 1 to ${max}`);
      return 0;
    }
    return Number(r.raw);
  }

  /** compactJWS reads a JWS in compact serialization of at most 8 KiB. */
  compactJWS(field: string): string {
    const s = this.str(field, false, 8 << 10);
    if (s === "") return "";
    const p = s.split(".");
    if (p.length < 3 || p.slice(0, 2).some((x) => !B64URL.test(x)) || !B64URL.test(p.slice(2).join("."))) {
      this.fail(field, "must be a JWS in compact serialization: three base64url parts separated by dots");
      return "";
    }
    return s;
  }

  sequence(field: string): number {
    const r = this.raw(field, false);
    if (r === undefined) return 0;
    if (!(r instanceof JSONNumber) || !/^[1-9][0-9]*$/.test(r.raw) || r.raw.length > 16 || Number(r.raw) > MAX_SEQUENCE) {
      this.fail(field, `must be an integer from 1 to ${MAX_SEQUENCE}`);
      return 0;
    }
    return Number(r.raw);
  }
}

/** parseObject reads a body as strict JSON holding an object, with its canonical form (without the member omit). */
function parseObject(body: Input, kind: "decision" | "execution" | "revocation", omit = ""): [JSONObject, string] {
  const bytes = asBytes(body);
  if (bytes.length > MAX_SUBMISSION_BYTES) fail("bad_entry", `invalid ${kind}: the body is ${bytes.length} bytes, the limit is ${MAX_SUBMISSION_BYTES}`);
  const v = parseJSON(bytes);
  if (!(v instanceof JSONObject)) fail("malformed", "JSON: the body must be a JSON object");
  return [v, canonicalize(without(v, omit))];
}

function without(o: JSONObject, name: string): JSONObject {
  if (!o.has(name)) return o;
  const c = new JSONObject();
  for (const [k, m] of o.members) {
    if (k === name) continue;
    c.members.push([k, m]);
    c.byName.set(k, m);
  }
  return c;
}

/**
 * parseDecision validates a decision (a request body, or the decision of
 * an entry) against the schema of the wire contract; now is the reference
 * for the 5-minute future limit of decided_at. It throws a
 * VerificationError: `malformed` for JSON that is not strict, a FieldError
 * (`bad_entry`) naming the field that breaks the schema.
 */
export function parseDecision(body: Input, now: Instant): Decision {
  const [obj, canonical] = parseObject(body, "decision");
  return decisionFrom(obj, canonical, now);
}

function decisionFrom(obj: JSONObject, canonical: string, now: Instant): Decision {
  const v = new Validator("decision", obj);
  v.allowOnly(
    "id", "outcome", "decided_at", "subject", "action", "resource", "policy", "input_digest", "reasons", "parent_id",
    "max_executions", "executor", "context", "sequence",
  );
  const id = v.id("id", true);
  const outcome = v.enumeration("outcome", ["allow", "deny"] as const);
  const [decidedAt, decidedAtInstant] = v.timestamp("decided_at", now);
  const subject = v.str("subject", true, 256);
  const action = v.str("action", true, 256);
  const resource = v.str("resource", false, 1024);
  let policyId = "";
  let policyVersion = "";
  let policyDigest = "";
  const pol = v.object("policy", true);
  if (pol) {
    const pv = new Validator("decision", pol, "policy.");
    pv.allowOnly("id", "version", "digest");
    policyId = pv.str("id", true, 256);
    policyVersion = pv.str("version", false, 256);
    policyDigest = pv.digest("digest");
    v.adopt(pv);
  }
  const inputDigest = v.digest("input_digest");
  const reasons = v.reasons("reasons");
  const parentId = v.id("parent_id", false);
  const maxExecutions = v.integer("max_executions", 1000);
  const executor = v.str("executor", false, 256);
  if (outcome === "deny") for (const f of ["max_executions", "executor"]) if (obj.has(f)) v.fail(f, "is only for allow decisions");
  v.context("context");
  const sequence = v.sequence("sequence");
  if (v.err) throw v.err;
  return {
    id, outcome, decidedAt, decidedAtInstant, subject, action, resource, policyId, policyVersion, policyDigest,
    inputDigest, reasons, parentId, maxExecutions, executor, sequence, canonical,
  };
}

/** parseExecution validates an execution report, as parseDecision a decision. */
export function parseExecution(body: Input, now: Instant): Execution {
  const [obj, canonical] = parseObject(body, "execution", "artifact");
  return executionFrom(obj, canonical, now);
}

function executionFrom(obj: JSONObject, canonical: string, now: Instant): Execution {
  const v = new Validator("execution", obj);
  v.allowOnly("id", "decision_id", "status", "at", "runtime", "result_digest", "context", "artifact", "claim_id");
  const id = v.id("id", true);
  const decisionId = v.id("decision_id", true);
  const status = v.enumeration("status", ["started", "succeeded", "failed", "aborted"] as const);
  const [at, atInstant] = v.timestamp("at", now);
  const runtime = v.str("runtime", false, 256);
  const resultDigest = v.digest("result_digest");
  v.context("context");
  const artifact = v.compactJWS("artifact");
  const claimId = v.id("claim_id", false);
  if (claimId !== "" && status === "started") v.fail("claim_id", "is only for a terminal report (succeeded, failed or aborted)");
  if (v.err) throw v.err;
  return { id, decisionId, status, at, atInstant, runtime, resultDigest, claimId, artifact, canonical };
}

/** parseRevocation validates a revocation, as parseDecision a decision. */
export function parseRevocation(body: Input, now: Instant): Revocation {
  const [obj, canonical] = parseObject(body, "revocation");
  return revocationFrom(obj, canonical, now);
}

function revocationFrom(obj: JSONObject, canonical: string, now: Instant): Revocation {
  const v = new Validator("revocation", obj);
  v.allowOnly("id", "decision_id", "revoked_at", "reason");
  const id = v.id("id", true);
  const decisionId = v.id("decision_id", true);
  const [revokedAt] = v.timestamp("revoked_at", now);
  const reason = v.str("reason", false, 1024);
  if (v.err) throw v.err;
  return { id, decisionId, revokedAt, reason, canonical };
}

/** keyFrom validates a key entry's content: exactly {"jwk":{"crv":"Ed25519","kty":"OKP","x":X},"kid":K}. */
function keyFrom(key: JSONValue): KeyContent {
  const exact = (o: JSONValue | undefined, names: string[], what: string): JSONObject => {
    if (!(o instanceof JSONObject)) fail("bad_entry", `${what} is not a JSON object`);
    for (const [k] of o.members) if (!names.includes(k)) fail("bad_entry", `${what} has an unknown member ${JSON.stringify(k)}`);
    for (const n of names) if (!o.has(n)) fail("bad_entry", `${what} has no ${n}`);
    return o;
  };
  const k = exact(key, ["jwk", "kid"], "the entry's key");
  const kid = k.get("kid");
  if (typeof kid !== "string" || !KID.test(kid)) fail("bad_entry", "the entry's kid is not 1 to 128 characters of A-Z a-z 0-9 . _ : -");
  const jwk = exact(k.get("jwk"), ["crv", "kty", "x"], "the entry's jwk");
  if (jwk.get("kty") !== "OKP" || jwk.get("crv") !== "Ed25519") fail("bad_entry", "the entry's jwk is not an Ed25519 OKP key");
  const xv = jwk.get("x");
  const x = typeof xv === "string" ? base64urlStrict(xv) : undefined;
  if (!x || x.length !== 32) fail("bad_entry", "the entry's jwk x is not the unpadded base64url of a 32-byte key");
  return { kid, publicKey: x };
}

const ENTRY_MEMBERS = ["artifact_digest", "authorized_until", "decision", "execution", "key", "logged_at", "revocation", "submitter", "v", "violation"];
const CONTENTS = ["decision", "execution", "revocation", "key"];

/**
 * parseEntry parses and validates an entry, as the Go log.ParseEntry: at
 * most 65,535 bytes of RFC 8785 canonical JSON, an object with exactly the
 * members of the entry shape, v 1, logged_at in UTC with 9 fractional
 * digits, a non-empty submitter, exactly one of decision and execution
 * (valid, dated at most 5 minutes after logged_at), and authorized_until
 * (UTC, whole seconds) exactly for an allow. It throws a VerificationError
 * with code `bad_entry` (or `malformed`).
 */
export function parseEntry(leaf: Input): Entry {
  const bytes = asBytes(leaf);
  if (bytes.length > MAX_ENTRY_BYTES) fail("bad_entry", `the entry is ${bytes.length} bytes, the limit is ${MAX_ENTRY_BYTES}`);
  let v: JSONValue;
  try {
    v = parseJSON(bytes);
  } catch (e) {
    fail("bad_entry", `the entry is not valid JSON: ${(e as Error).message}`);
  }
  if (canonicalize(v) !== fromUTF8(bytes)) fail("bad_entry", "the entry is not in RFC 8785 canonical form");
  if (!(v instanceof JSONObject)) fail("bad_entry", "the entry is not a JSON object");
  for (const [k] of v.members) {
    if (!ENTRY_MEMBERS.includes(k)) fail("bad_entry", `the entry has an unknown member ${JSON.stringify(k)}`);
  }
  const ver = v.get("v");
  if (!(ver instanceof JSONNumber) || ver.raw !== "1") fail("bad_entry", "the entry's v is not 1");
  const loggedAt = v.get("logged_at");
  const loggedAtInstant = typeof loggedAt === "string" ? parseUTC(loggedAt, true) : undefined;
  if (typeof loggedAt !== "string" || !loggedAtInstant) fail("bad_entry", "the entry has a bad logged_at");
  const submitter = v.get("submitter");
  if (typeof submitter !== "string" || submitter === "") fail("bad_entry", "the entry has no submitter");
  if (v.members.filter(([k]) => CONTENTS.includes(k)).length !== 1) fail("bad_entry", "the entry must hold exactly one of decision, execution, revocation and key");
  const decision = v.get("decision");
  const execution = v.get("execution");
  const revocation = v.get("revocation");
  const until = v.get("authorized_until");
  if (execution === undefined && (v.has("artifact_digest") || v.has("violation"))) fail("bad_entry", "only an execution entry has artifact_digest or violation");
  if (decision === undefined && v.has("authorized_until")) fail("bad_entry", "only an allow decision has authorized_until");
  if (decision !== undefined) {
    if (!(decision instanceof JSONObject)) fail("bad_entry", "the entry's decision is not an object");
    const d = wrap(() => decisionFrom(decision, canonicalize(decision), loggedAtInstant));
    const allow = d.outcome === "allow";
    if (allow !== v.has("authorized_until")) fail("bad_entry", "the entry must have authorized_until exactly when the outcome is allow");
    if (allow && (typeof until !== "string" || !parseUTC(until, false))) fail("bad_entry", "the entry has a bad authorized_until");
    return { kind: "decision", id: d.id, submitter, loggedAt, authorizedUntil: allow ? (until as string) : "", decision: d };
  }
  if (execution !== undefined) {
    if (!(execution instanceof JSONObject)) fail("bad_entry", "the entry's execution is not an object");
    const x = wrap(() => executionFrom(execution, canonicalize(execution), loggedAtInstant));
    if (x.artifact !== "") fail("bad_entry", "an execution entry holds no artifact");
    const digest = v.get("artifact_digest");
    if (v.has("artifact_digest") && (typeof digest !== "string" || !DIGEST.test(digest))) fail("bad_entry", "the entry has a bad artifact_digest");
    const violation = v.get("violation");
    if (v.has("violation") && !(VIOLATIONS as readonly unknown[]).includes(violation)) fail("bad_entry", "the entry has an unknown violation");
    return {
      kind: "execution", id: x.id, submitter, loggedAt, authorizedUntil: "", execution: x,
      artifactDigest: (digest as string | undefined) ?? "", violation: (violation as string | undefined) ?? "",
    };
  }
  if (revocation !== undefined) {
    if (!(revocation instanceof JSONObject)) fail("bad_entry", "the entry's revocation is not an object");
    const r = wrap(() => revocationFrom(revocation, canonicalize(revocation), loggedAtInstant));
    return { kind: "revocation", id: r.id, submitter, loggedAt, authorizedUntil: "", revocation: r };
  }
  const key = keyFrom(v.get("key")!);
  return { kind: "key", id: key.kid, submitter, loggedAt, authorizedUntil: "", key };
}

function wrap<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof FieldError) throw e;
    fail("bad_entry", `the entry holds an invalid content: ${(e as Error).message}`);
  }
}
