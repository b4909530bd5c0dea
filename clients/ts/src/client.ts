// A thin client of the govlog REST API (wire contract §4), with the retry
// rules of the Go SDK (package client): submissions are idempotent by id,
// so every request is retried on 429, 502, 503 and 504 and when no answer
// came, honouring Retry-After, within a bounded number of attempts.

import { asBytes, fromUTF8, utf8, type Input } from "./bytes.js";
import { verifyArtifact, authorize, JWKS, type ArtifactClaims, type Authorization } from "./artifact.js";
import { verifyCheckpoint, type Checkpoint } from "./checkpoint.js";
import { parseDecision, parseExecution, parseRevocation } from "./entry.js";
import { fail } from "./errors.js";
import { canonicalize, JSONNumber, JSONObject, parseJSON, type JSONValue } from "./json.js";
import { verifyKeyReceipt, type VerifiedKey } from "./keys.js";
import type { NoteVerifier } from "./note.js";
import { verifyAnyReceipt, verifyReceiptJSON, type Verified } from "./receipt.js";
import { parseUTC } from "./time.js";

type Kind = "decision" | "execution" | "revocation";

/** Defaults of ClientOptions. */
export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_MAX_RETRY_WAIT_MS = 60_000;
const BACKOFF_BASE_MS = 200;
const BACKOFF_MAX_MS = 5_000;
const MAX_RESPONSE_BYTES = 1 << 20;
const JWKS_TTL_MS = 5 * 60_000;
const JWKS_MIN_REFRESH_MS = 30_000;

/** An error answer of the API: its status and the code and message of its JSON error body. */
export class APIError extends Error {
  constructor(
    readonly status: number,
    /** code is the error code of the body, "" when the body was not a JSON error. */
    readonly code: string,
    message: string,
    /** retryAfterMs is the server's Retry-After, 0 when absent. */
    readonly retryAfterMs: number,
    /** body is the answer's body. */
    readonly body: Uint8Array = new Uint8Array(),
  ) {
    super(code ? `govlog API: ${status} ${code}: ${message}` : `govlog API: ${status}: ${message}`);
    this.name = "APIError";
  }
}

/**
 * ViolationError is the answer 409 to an execution report that breaks a
 * rule of the authorization (wire contract §2b): the log recorded it, with
 * code as its violation, and receipt is the receipt of that entry. A
 * runtime that gets it must not execute.
 */
export class ViolationError extends APIError {
  constructor(
    err: APIError,
    /** receipt is the receipt of the recorded report, as received. */
    readonly receipt: Receipt,
    /** receiptBody is the JSON receipt, as received: keep it, it is the evidence. */
    readonly receiptBody: string,
    /** verified is the verified receipt, when the client has the log key. */
    readonly verified?: Verified,
  ) {
    super(err.status, err.code, err.message.replace(/^govlog API: \d+ [a-z_]+: /, ""), err.retryAfterMs, err.body);
    this.name = "ViolationError";
  }
}

/** One result of a batch submission: a receipt, or the item's error. */
export type BatchResult = ({ ok: true } & Submitted) | { ok: false; error: { code: string; message: string } };

/** The status of an authorization (GET /v1/authorizations/{id}). */
export interface AuthorizationStatus {
  decision_id: string;
  status: "active" | "expired" | "revoked" | "exhausted" | "denied";
  authorized_until?: string;
  max_executions?: number;
  uses?: number;
  checkpoint: string;
  receipts: Receipt[];
  /** verified are the receipts, verified against checkpoint, when the client has the log key. */
  verified?: Verified[];
}

/** A logged artifact key (GET /v1/keys). */
export interface LoggedKey {
  kid: string;
  index: bigint;
  /** verified is the key's verified receipt, when the client has the log key. */
  verified?: VerifiedKey;
}

/** A receipt as the API sends it. */
export interface Receipt {
  id: string;
  index: number;
  leaf_hash: string;
  entry: string;
  checkpoint: string;
  inclusion_proof: string[];
  tlog_proof: string;
  /** artifact is the authorization artifact of an allow, on submission only. */
  artifact?: string;
}

/** The answer to a submission. */
export interface Submitted {
  receipt: Receipt;
  /** body is the JSON receipt as received: keep it, it is the evidence. */
  body: string;
  /** created is false for a resubmission, which gets the original receipt. */
  created: boolean;
  /** verified is the verified receipt, when the client has the log key. */
  verified?: Verified;
}

export interface ClientOptions {
  /** token is sent as "Authorization: Bearer <token>". */
  token?: string;
  /** logKey is the log's note verifier key: receipts and checkpoints are then verified before they are returned. */
  logKey?: NoteVerifier;
  /** audience is the "aud" artifacts must name (none by default). */
  audience?: string;
  /** jwks pins the artifact keys: verifyArtifact then never fetches them. */
  jwks?: JWKS;
  /** maxAttempts is how many times a request is sent at most (default 5). */
  maxAttempts?: number;
  /** maxRetryWaitMs is the longest Retry-After honoured by waiting (default 60 s); longer returns the error. */
  maxRetryWaitMs?: number;
  /** fetch replaces globalThis.fetch. */
  fetch?: typeof fetch;
  /** sleep replaces the wait between attempts (tests). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Options of one call. */
export interface CallOptions {
  /** signal aborts the call, retries included. */
  signal?: AbortSignal;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * parseRetryAfter reads a Retry-After header (delay seconds or an HTTP
 * date) as milliseconds, 0 when absent or invalid.
 */
export function parseRetryAfter(v: string | null, nowMs = Date.now()): number {
  if (!v) return 0;
  if (/^[0-9]{1,10}$/.test(v)) {
    const s = Number(v);
    return s <= 0xffffffff ? s * 1000 : 0;
  }
  const t = Date.parse(v);
  return Number.isFinite(t) && t > nowMs ? t - nowMs : 0;
}

/** backoffMs is the wait before attempt+1 without Retry-After: exponential, capped, with jitter. */
export function backoffMs(attempt: number): number {
  const d = Math.min(BACKOFF_BASE_MS * 2 ** Math.min(attempt - 1, 16), BACKOFF_MAX_MS);
  return d / 2 + Math.random() * (d / 2);
}

class TransportError extends Error {
  constructor(override readonly cause: unknown) {
    super(`govlog request failed: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = "TransportError";
  }
}

function retryable(err: unknown): boolean {
  if (err instanceof TransportError) {
    // A certificate that does not verify will not verify next time.
    const code = String((err.cause as { cause?: { code?: string } })?.cause?.code ?? "");
    return !/CERT|TLS|SELF_SIGNED/.test(code);
  }
  return err instanceof APIError && [429, 502, 503, 504].includes(err.status);
}

/** A client of one govlog server. */
export class Client {
  private readonly base: URL;
  private readonly opts: ClientOptions;
  private jwksCache?: { set: JWKS; at: number };

  /** baseURL is e.g. "https://govlog.example.com" or "http://127.0.0.1:8080/prefix". */
  constructor(baseURL: string, opts: ClientOptions = {}) {
    const u = new URL(baseURL);
    if ((u.protocol !== "http:" && u.protocol !== "https:") || !u.host) throw new Error(`the server URL ${baseURL} is not http(s)://host`);
    if (u.search || u.hash) throw new Error(`the server URL ${baseURL} must have no query or fragment`);
    this.base = u;
    this.opts = opts;
  }

  private url(path: string): string {
    return this.base.href.replace(/\/+$/, "") + path;
  }

  /**
   * request sends a request until it gets a 2xx answer, a final error
   * answer (an APIError), or runs out of attempts.
   */
  private async request(method: string, path: string, body: Uint8Array | undefined, call: CallOptions): Promise<{ status: number; body: Uint8Array; type: string }> {
    const max = Math.max(this.opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, 1);
    const maxWait = this.opts.maxRetryWaitMs ?? DEFAULT_MAX_RETRY_WAIT_MS;
    const sleep = this.opts.sleep ?? defaultSleep;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(method, path, body, call);
      } catch (err) {
        if (call.signal?.aborted || !retryable(err) || attempt >= max) {
          if (retryable(err) && attempt >= max) throw new Error(`gave up after ${attempt} attempts: ${(err as Error).message}`, { cause: err });
          throw err;
        }
        const wait = (err instanceof APIError && err.retryAfterMs) || backoffMs(attempt);
        if (wait > maxWait) throw new Error(`the server asks to retry after ${wait} ms, longer than ${maxWait} ms: ${(err as Error).message}`, { cause: err });
        await sleep(wait, call.signal);
      }
    }
  }

  private async attempt(method: string, path: string, body: Uint8Array | undefined, call: CallOptions): Promise<{ status: number; body: Uint8Array; type: string }> {
    const headers: Record<string, string> = { Accept: "application/json, text/plain" };
    if (body) headers["Content-Type"] = "application/json";
    if (this.opts.token) headers["Authorization"] = `Bearer ${this.opts.token}`;
    let resp: Response;
    try {
      const init: RequestInit = { method, headers };
      if (body) init.body = body.slice();
      if (call.signal) init.signal = call.signal;
      resp = await (this.opts.fetch ?? fetch)(this.url(path), init);
    } catch (e) {
      if (call.signal?.aborted) throw e;
      throw new TransportError(e);
    }
    let data: Uint8Array;
    try {
      data = new Uint8Array(await resp.arrayBuffer());
    } catch (e) {
      throw new TransportError(e);
    }
    if (data.length > MAX_RESPONSE_BYTES) throw new Error(`the response is larger than ${MAX_RESPONSE_BYTES} bytes`);
    const type = resp.headers.get("Content-Type") ?? "";
    if (resp.status >= 200 && resp.status < 300) return { status: resp.status, body: data, type };
    let code = "";
    let message = (fromUTF8(data) ?? "").trim().slice(0, 200) || "(no body)";
    try {
      const e = JSON.parse(fromUTF8(data) ?? "") as { error?: { code?: unknown; message?: unknown } };
      if (typeof e.error?.code === "string" && e.error.code) {
        code = e.error.code;
        message = String(e.error.message ?? "");
      }
    } catch {
      // not a JSON error
    }
    throw new APIError(resp.status, code, message, parseRetryAfter(resp.headers.get("Retry-After")), data);
  }

  private async receipt(data: Uint8Array): Promise<[Receipt, string, Verified | undefined]> {
    const text = fromUTF8(data) ?? fail("malformed", "the receipt is not UTF-8");
    const r = JSON.parse(text) as Receipt;
    if (!this.opts.logKey) return [r, text, undefined];
    return [r, text, await verifyReceiptJSON(data, this.opts.logKey)];
  }

  private async submit(kind: Kind, body: object | Input, call: CallOptions): Promise<Submitted> {
    const bytes = typeof body === "object" && !(body instanceof Uint8Array) ? utf8(JSON.stringify(body)) : asBytes(body as Input);
    let res: { status: number; body: Uint8Array };
    try {
      res = await this.request("POST", `/v1/${kind}s`, bytes, call);
    } catch (e) {
      if (kind === "execution" && e instanceof APIError && e.status === 409) await this.violation(e, bytes);
      throw e;
    }
    if (res.status !== 200 && res.status !== 201) throw new Error(`unexpected status ${res.status}`);
    const [receipt, text, verified] = await this.receipt(res.body);
    if (verified) this.holds(verified, kind, bytes);
    const out: Submitted = { receipt, body: text, created: res.status === 201 };
    if (verified) out.verified = verified;
    return out;
  }

  /** holds checks that a verified entry holds exactly the submitted body, canonicalized as the log does. */
  private holds(verified: Verified, kind: Kind, bytes: Uint8Array, violation = ""): void {
    const at = parseUTC(verified.entry.loggedAt, true)!;
    let canonical = "";
    try {
      const parse = { decision: parseDecision, execution: parseExecution, revocation: parseRevocation }[kind];
      canonical = parse(bytes, at).canonical;
    } catch {
      // the log accepted what this validator refuses: not the submission
    }
    const e = verified.entry;
    const content = kind === "decision" ? e.decision?.canonical : kind === "execution" ? e.execution?.canonical : e.revocation?.canonical;
    if (e.kind !== kind || canonical === "" || content !== canonical || (e.violation ?? "") !== violation) {
      fail("mismatch", `the receipt's entry ${verified.index} does not hold the submitted ${kind}${violation ? ` with the violation ${violation}` : ""}`);
    }
  }

  /** violation turns a 409 that carries the receipt of a recorded report into a ViolationError. */
  private async violation(err: APIError, bytes: Uint8Array): Promise<void> {
    let r: JSONValue | undefined;
    try {
      const v = parseJSON(err.body);
      r = v instanceof JSONObject ? v.get("receipt") : undefined;
    } catch {
      return;
    }
    if (!(r instanceof JSONObject)) return; // a conflict (id_conflict), not a recorded violation
    const text = canonicalize(r);
    const receipt = JSON.parse(text) as Receipt;
    let verified: Verified | undefined;
    if (this.opts.logKey) {
      verified = await verifyReceiptJSON(text, this.opts.logKey);
      this.holds(verified, "execution", bytes, err.code);
    }
    throw new ViolationError(err, receipt, text, verified);
  }

  /** submitDecision logs a decision (an object, or its JSON) and returns its receipt (with an artifact for an allow). */
  submitDecision(decision: object | Input, call: CallOptions = {}): Promise<Submitted> {
    return this.submit("decision", decision, call);
  }

  /**
   * reportExecution logs an execution report and returns its receipt. A
   * claim (started, or terminal without claim_id) carries the decision's
   * artifact. A report that breaks a rule is recorded and answered 409: it
   * throws a ViolationError carrying the receipt of the recorded entry (and
   * the runtime must not execute).
   */
  reportExecution(report: object | Input, call: CallOptions = {}): Promise<Submitted> {
    return this.submit("execution", report, call);
  }

  /** claim reports that an execution starts (status started, with the artifact): see reportExecution. */
  claim(report: object | Input, call: CallOptions = {}): Promise<Submitted> {
    return this.submit("execution", report, call);
  }

  /** revoke logs a revocation of an allow (wire contract §2c) and returns its receipt. */
  revoke(revocation: object | Input, call: CallOptions = {}): Promise<Submitted> {
    return this.submit("revocation", revocation, call);
  }

  /**
   * submitDecisions logs up to 1000 decisions in one request
   * (POST /v1/decisions/batch) and returns one result per decision, in
   * order: its receipt (verified, with the log key), or its error. The
   * whole request is retried like a single submission: items are
   * idempotent by id.
   */
  async submitDecisions(decisions: readonly (object | Input)[], call: CallOptions = {}): Promise<BatchResult[]> {
    const items = decisions.map((d) => (typeof d === "object" && !(d instanceof Uint8Array) ? utf8(JSON.stringify(d)) : asBytes(d as Input)));
    const parts = items.map((b) => fromUTF8(b) ?? fail("malformed", "a decision is not UTF-8"));
    const res = await this.request("POST", "/v1/decisions/batch", utf8(`{"decisions":[${parts.join(",")}]}`), call);
    const v = parseJSON(res.body);
    const results = v instanceof JSONObject ? v.get("results") : undefined;
    if (!Array.isArray(results) || results.length !== items.length) fail("malformed", `the batch answer does not have ${items.length} results`);
    const out: BatchResult[] = [];
    for (const [i, r] of results.entries()) {
      if (!(r instanceof JSONObject)) fail("malformed", `batch result ${i} is not an object`);
      const e = r.get("error");
      if (e instanceof JSONObject) {
        out.push({ ok: false, error: { code: String(e.get("code") ?? ""), message: String(e.get("message") ?? "") } });
        continue;
      }
      const [receipt, text, verified] = await this.receipt(utf8(canonicalize(r)));
      if (verified) this.holds(verified, "decision", items[i]!);
      out.push(verified ? { ok: true, receipt, body: text, created: true, verified } : { ok: true, receipt, body: text, created: true });
    }
    return out;
  }

  /**
   * authorization returns the status of an authorization (wire contract
   * §2d). With the log key, the checkpoint and every receipt are verified,
   * each receipt against that checkpoint, the first being the decision's.
   */
  async authorization(decisionId: string, call: CallOptions = {}): Promise<AuthorizationStatus> {
    const res = await this.request("GET", `/v1/authorizations/${encodeURIComponent(decisionId)}`, undefined, call);
    const v = parseJSON(res.body);
    if (!(v instanceof JSONObject) || !Array.isArray(v.get("receipts"))) fail("malformed", "the authorization status has no receipts");
    const status = JSON.parse(fromUTF8(res.body)!) as AuthorizationStatus;
    const logKey = this.opts.logKey;
    if (!logKey) return status;
    await verifyCheckpoint(status.checkpoint, logKey);
    const verified: Verified[] = [];
    for (const r of v.get("receipts") as JSONValue[]) {
      const one = await verifyReceiptJSON(canonicalize(r), logKey);
      if (fromUTF8(one.checkpoint.note) !== status.checkpoint) fail("mismatch", `the receipt of entry ${one.index} is not against the status's checkpoint`);
      verified.push(one);
    }
    const first = verified[0]?.entry;
    if (!first || first.kind !== "decision" || first.id !== decisionId) fail("mismatch", `the first receipt is not the decision ${decisionId}'s`);
    for (const x of verified.slice(1)) {
      const about = x.entry.execution?.decisionId ?? x.entry.revocation?.decisionId;
      if (about !== decisionId) fail("mismatch", `the receipt of entry ${x.index} is not about the decision ${decisionId}`);
    }
    status.verified = verified;
    return status;
  }

  /**
   * keys returns the log's artifact keys (GET /v1/keys) and the answer as
   * received (for verifyWithKeys). With the log key, every key's receipt is
   * verified: a key entry of that kid at that index.
   */
  async keys(call: CallOptions = {}): Promise<{ body: string; keys: LoggedKey[] }> {
    const res = await this.request("GET", "/v1/keys", undefined, call);
    const body = fromUTF8(res.body) ?? fail("malformed", "the key list is not UTF-8");
    const v = parseJSON(res.body);
    const list = v instanceof JSONObject ? v.get("keys") : undefined;
    if (!Array.isArray(list)) fail("malformed", 'the key list has no "keys" array');
    const keys: LoggedKey[] = [];
    for (const k of list) {
      const kid = k instanceof JSONObject ? k.get("kid") : undefined;
      const index = k instanceof JSONObject ? k.get("index") : undefined;
      if (typeof kid !== "string" || !(index instanceof JSONNumber) || !/^(0|[1-9][0-9]*)$/.test(index.raw)) fail("malformed", "a key of the list has no kid or index");
      const key: LoggedKey = { kid, index: BigInt(index.raw) };
      if (this.opts.logKey) {
        key.verified = await verifyKeyReceipt(canonicalize((k as JSONObject).get("receipt") ?? null), this.opts.logKey);
        if (key.verified.key.kid !== kid || key.verified.index !== key.index) fail("mismatch", `the receipt of key ${kid} is of another key`);
      }
      keys.push(key);
    }
    return { body, keys };
  }

  private async lookup(kind: "decision" | "execution", id: string, call: CallOptions): Promise<Submitted> {
    const res = await this.request("GET", `/v1/${kind}s/${encodeURIComponent(id)}`, undefined, call);
    const [receipt, text, verified] = await this.receipt(res.body);
    if (verified && (verified.entry.kind !== kind || verified.entry.id !== id)) {
      fail("mismatch", `the server sent the receipt of ${verified.entry.kind} ${verified.entry.id}`);
    }
    const out: Submitted = { receipt, body: text, created: false };
    if (verified) out.verified = verified;
    return out;
  }

  /** getDecision returns the receipt of a logged decision against the latest checkpoint (no artifact); 404 is an APIError. */
  getDecision(id: string, call: CallOptions = {}): Promise<Submitted> {
    return this.lookup("decision", id, call);
  }

  /** getExecution returns the receipt of a logged execution report. */
  getExecution(id: string, call: CallOptions = {}): Promise<Submitted> {
    return this.lookup("execution", id, call);
  }

  /** checkpoint returns the log's latest checkpoint, verified with the log key. */
  async checkpoint(call: CallOptions = {}): Promise<Checkpoint> {
    if (!this.opts.logKey) throw new Error("checkpoint needs the log key (ClientOptions.logKey)");
    const res = await this.request("GET", "/v1/checkpoint", undefined, call);
    return verifyCheckpoint(res.body, this.opts.logKey);
  }

  /** jwks returns the artifact keys: pinned, cached (5 minutes), or fetched. */
  async jwks(call: CallOptions = {}, refresh = false): Promise<JWKS> {
    if (this.opts.jwks) return this.opts.jwks;
    const c = this.jwksCache;
    const age = c ? Date.now() - c.at : Infinity;
    if (c && ((!refresh && age < JWKS_TTL_MS) || (refresh && age < JWKS_MIN_REFRESH_MS))) return c.set;
    const res = await this.request("GET", "/.well-known/jwks.json", undefined, call);
    const set = JWKS.parse(res.body);
    this.jwksCache = { set, at: Date.now() };
    return set;
  }

  /**
   * verifyArtifact is what a runtime calls before it executes an action:
   * it verifies an artifact against the log's artifact keys, the log's
   * origin (the log key's name), the audience and the time, with the
   * receipt it came with when given (a tlog-proof or JSON receipt), and
   * checks that it authorizes exactly want. It throws a VerificationError.
   */
  async verifyArtifact(token: string, want: Authorization & { receipt?: Input; now?: number | Date }, call: CallOptions = {}): Promise<ArtifactClaims> {
    const logKey = this.opts.logKey;
    if (!logKey) throw new Error("verifyArtifact needs the log key (ClientOptions.logKey)");
    const opts: Parameters<typeof verifyArtifact>[2] = { origin: logKey.name, audience: this.opts.audience ?? "" };
    if (want.now !== undefined) opts.now = want.now;
    if (want.receipt !== undefined) opts.receipt = await verifyAnyReceipt(want.receipt, logKey);
    let set = await this.jwks(call);
    let claims: ArtifactClaims;
    try {
      claims = await verifyArtifact(token, set, opts);
    } catch (e) {
      // Perhaps a key the cached set does not have yet.
      if (this.opts.jwks || (e as { code?: string }).code !== "bad_signature") throw e;
      const fresh = await this.jwks(call, true);
      if (fresh === set) throw e;
      set = fresh;
      claims = await verifyArtifact(token, set, opts);
    }
    authorize(claims, want);
    return claims;
  }
}
