"""govlog: offline verification of govlog evidence, and a thin client of the govlog REST API.

Every check is the one the Go package github.com/govlog/govlog/verifier makes, held to the same
vectors (testdata/verify in the govlog repository); docs/verification.md states each algorithm
step by step::

    from govlog import parse_note_key, verify_receipt
    log_key = parse_note_key(open("log.vkey").read().strip())
    v = verify_receipt(open("deploy-42.tlog-proof", "rb").read(), log_key)  # raises VerificationError
    print(v.entry.kind, v.entry.id, v.index, v.checkpoint.size)
"""

from .artifact import ARTIFACT_TYPE, JWKS, ArtifactClaims, authorize, verify_artifact
from .bundle import BUNDLE_FORMAT, VerifiedBundle, verify_bundle
from .checkpoint import EMPTY_ROOT, Checkpoint, verify_checkpoint, verify_signed_consistency
from .client import APIError, Client, Submitted, TransportError, ViolationError, parse_retry_after
from .entry import (VIOLATIONS, Decision, Entry, Execution, KeyContent, Revocation, parse_decision, parse_entry, parse_execution,
                    parse_revocation)
from .errors import FieldError, VerificationError
from .jcs import JSONNumber, JSONObject, canonical_json, canonicalize, parse_json
from .keys import VerifiedKey, key_index_of, key_receipt_for, verify_key_bound, verify_key_receipt, verify_with_keys
from .merkle import root_from_inclusion_proof, verify_consistency, verify_inclusion
from .note import Note, NoteVerifier, cosignature_time, key_id, open_note, parse_cosignature_key, parse_note_key
from .policy import Policy, PolicyWitness, parse_policy
from .receipt import TLogProof, Verified, parse_tlog_proof, verify_any_receipt, verify_receipt, verify_receipt_json
from .timefmt import parse_rfc3339
from ._crypto import leaf_hash, node_hash, sha256

__all__ = [
    "VerifiedKey", "key_index_of", "key_receipt_for", "verify_key_bound", "verify_key_receipt", "verify_with_keys",
    "VIOLATIONS", "KeyContent", "Revocation", "parse_revocation", "BUNDLE_FORMAT", "VerifiedBundle", "verify_bundle", "ViolationError",
    "APIError", "ARTIFACT_TYPE", "ArtifactClaims", "Checkpoint", "Client", "Decision", "EMPTY_ROOT", "Entry",
    "Execution", "FieldError", "JSONNumber", "JSONObject", "JWKS", "Note", "NoteVerifier", "Policy", "PolicyWitness",
    "Submitted", "TLogProof", "TransportError", "VerificationError", "Verified", "authorize", "canonical_json",
    "canonicalize", "cosignature_time", "key_id", "leaf_hash", "node_hash", "open_note", "parse_cosignature_key",
    "parse_decision", "parse_entry", "parse_execution", "parse_json", "parse_note_key", "parse_policy",
    "parse_retry_after", "parse_rfc3339", "parse_tlog_proof", "root_from_inclusion_proof", "sha256", "verify_any_receipt",
    "verify_artifact", "verify_checkpoint", "verify_consistency", "verify_inclusion", "verify_receipt",
    "verify_receipt_json", "verify_signed_consistency",
]
