/**
 * What failed, as the Go package verifier's sentinel errors say it.
 *
 * - `malformed`: the evidence cannot be parsed, or is not in canonical form.
 * - `bad_signature`: a checkpoint or artifact is not signed by the trusted key.
 * - `bad_checkpoint`: a checkpoint is signed by the log key but is not a valid checkpoint of that log.
 * - `bad_proof`: an inclusion proof does not verify.
 * - `bad_entry`: the entry is not a valid govlog entry.
 * - `mismatch`: two parts of the evidence that must agree do not.
 * - `inconsistent`: two checkpoints of the log are not consistent.
 * - `policy`: a checkpoint's cosignatures do not satisfy the witness policy.
 * - `bad_artifact`: an artifact is malformed, expired, or not for this issuer or audience.
 * - `binding`: a valid artifact is not bound to the given receipt.
 * - `not_authorized`: a valid artifact authorizes something else.
 * - `bad_key`: a key or a key set cannot be used.
 */
export type VerificationErrorCode =
  | "malformed"
  | "bad_signature"
  | "bad_checkpoint"
  | "bad_proof"
  | "bad_entry"
  | "mismatch"
  | "inconsistent"
  | "policy"
  | "bad_artifact"
  | "binding"
  | "not_authorized"
  | "bad_key";

/** The error of every failed check of this package. */
export class VerificationError extends Error {
  readonly code: VerificationErrorCode;
  constructor(code: VerificationErrorCode, message: string) {
    super(message);
    this.name = "VerificationError";
    this.code = code;
  }
}

/** fail throws a VerificationError. */
export function fail(code: VerificationErrorCode, message: string): never {
  throw new VerificationError(code, message);
}

/**
 * FieldError is a decision or execution report that breaks the schema
 * (code `bad_entry`): field is the dotted path of the member, as the Go
 * package log names it ("policy.digest", "reasons[3]").
 */
export class FieldError extends VerificationError {
  readonly field: string;
  readonly reason: string;
  constructor(kind: "decision" | "execution" | "revocation", field: string, reason: string) {
    super("bad_entry", `invalid ${kind}: ${field ? field + ": " : ""}${reason}`);
    this.name = "FieldError";
    this.field = field;
    this.reason = reason;
  }
}
