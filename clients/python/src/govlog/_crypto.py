"""SHA-256 (hashlib) and Ed25519 (the cryptography package)."""

from __future__ import annotations

import hashlib
from typing import Dict, Optional

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(leaf: bytes) -> bytes:
    """The RFC 6962 leaf hash SHA-256(0x00 ‖ leaf)."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 node hash SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


# Loaded keys, by their bytes: a verifier checks the same few keys again and again.
_keys: Dict[bytes, Optional[Ed25519PublicKey]] = {}


def ed25519_verify(public_key: bytes, msg: bytes, sig: bytes) -> bool:
    """Whether sig is a valid Ed25519 signature of msg by public_key (32 bytes)."""
    if len(public_key) != 32 or len(sig) != 64:
        return False
    key = _keys.get(public_key, False)
    if key is False:
        if len(_keys) >= 1024:
            _keys.clear()
        try:
            key = Ed25519PublicKey.from_public_bytes(public_key)
        except ValueError:
            key = None
        _keys[public_key] = key
    if key is None:
        return False
    try:
        key.verify(sig, msg)
        return True
    except InvalidSignature:
        return False
