/**
 * govlog: offline verification of govlog evidence, and a thin client of
 * the govlog REST API.
 *
 * Every check is the one the Go package github.com/govlog/govlog/verifier
 * makes, held to the same vectors (testdata/verify in the govlog
 * repository); docs/verification.md states each algorithm step by step.
 *
 * ```js
 * import { parseNoteKey, verifyReceipt } from "govlog";
 * const logKey = parseNoteKey("example.com/govlog+f2a81beb+AU/F0O0Z6IrJ/0KmSp5Rax8khcDGbDeFrp36+0zmZYjv");
 * const v = await verifyReceipt(tlogProofText, logKey); // throws VerificationError
 * console.log(v.entry.decision?.outcome, v.index, v.checkpoint.size);
 * ```
 *
 * @module
 */

export { VerificationError, FieldError, type VerificationErrorCode } from "./errors.js";
export { base64, base64url, utf8, type Input } from "./bytes.js";
export { sha256, leafHash, nodeHash } from "./crypto.js";
export { parseJSON, canonicalize, canonicalJSON, JSONNumber, JSONObject, type JSONValue } from "./json.js";
export { parseRFC3339, type Instant } from "./time.js";
export {
  parseNoteKey,
  parseCosignatureKey,
  openNote,
  cosignatureTime,
  keyId,
  type NoteVerifier,
  type Note,
  type NoteSignature,
} from "./note.js";
export { verifyCheckpoint, verifySignedConsistency, checkpointText, EMPTY_ROOT, type Checkpoint } from "./checkpoint.js";
export { verifyInclusion, verifyConsistency, rootFromInclusionProof } from "./merkle.js";
export { Policy, parsePolicy, type PolicyWitness } from "./policy.js";
export {
  parseTLogProof,
  verifyReceipt,
  verifyReceiptJSON,
  verifyAnyReceipt,
  type TLogProof,
  type Verified,
} from "./receipt.js";
export {
  parseEntry,
  parseDecision,
  parseExecution,
  parseRevocation,
  VIOLATIONS,
  type Entry,
  type Decision,
  type Execution,
  type Revocation,
  type KeyContent,
} from "./entry.js";
export {
  verifyArtifact,
  authorize,
  JWKS,
  ARTIFACT_TYPE,
  type ArtifactClaims,
  type ArtifactOptions,
  type Authorization,
} from "./artifact.js";
export {
  verifyKeyReceipt,
  verifyKeyBound,
  verifyWithKeys,
  keyReceiptFor,
  keyIndexOf,
  type VerifiedKey,
  type KeyBoundOptions,
} from "./keys.js";
export { verifyBundle, BUNDLE_FORMAT, MAX_BUNDLE_ENTRIES, type VerifiedBundle } from "./bundle.js";
export {
  ViolationError,
  type BatchResult,
  type AuthorizationStatus,
  type LoggedKey,
} from "./client.js";
export { Client, APIError, parseRetryAfter, type ClientOptions, type CallOptions, type Receipt, type Submitted } from "./client.js";
