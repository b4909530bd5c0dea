"""The errors of this package: what failed, as the Go package verifier says it."""

from __future__ import annotations

#: The codes of VerificationError, as the Go verifier's sentinel errors.
CODES = (
    "malformed",  # the evidence cannot be parsed, or is not in canonical form
    "bad_signature",  # a checkpoint or artifact is not signed by the trusted key
    "bad_checkpoint",  # signed by the log key, but not a valid checkpoint of that log
    "bad_proof",  # an inclusion proof does not verify
    "bad_entry",  # the entry is not a valid govlog entry
    "mismatch",  # two parts of the evidence that must agree do not
    "inconsistent",  # two checkpoints of the log are not consistent
    "policy",  # the cosignatures do not satisfy the witness policy
    "bad_artifact",  # an artifact is malformed, expired, or not for this issuer or audience
    "binding",  # a valid artifact is not bound to the given receipt
    "not_authorized",  # a valid artifact authorizes something else
    "bad_key",  # a key or a key set cannot be used
)


class VerificationError(Exception):
    """A check failed; code is one of CODES."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class FieldError(VerificationError):
    """A decision or execution report breaks the schema; field is the dotted path of the member."""

    def __init__(self, kind: str, field: str, reason: str) -> None:
        super().__init__("bad_entry", "invalid %s: %s%s" % (kind, field + ": " if field else "", reason))
        self.field = field
        self.reason = reason


def fail(code: str, message: str) -> "NoReturn":  # noqa: F821
    raise VerificationError(code, message)
