"""RFC 6962 Merkle tree proofs (SHA-256), as github.com/transparency-dev/merkle/proof verifies them."""

from __future__ import annotations

from typing import List, Sequence, Tuple

from ._crypto import node_hash
from .errors import VerificationError


def _decompose(index: int, size: int) -> Tuple[int, int]:
    inner = (index ^ (size - 1)).bit_length()
    return inner, bin(index >> inner).count("1")


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def root_from_inclusion_proof(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root of the tree of size in which leaf_hash is at index, given its inclusion proof."""
    if index >= size:
        raise VerificationError("bad_proof", "index %d is not below the tree size %d" % (index, size))
    if len(leaf_hash) != 32:
        raise VerificationError("bad_proof", "the leaf hash is %d bytes, not 32" % len(leaf_hash))
    inner, border = _decompose(index, size)
    if len(proof) != inner + border:
        raise VerificationError("bad_proof", "the inclusion proof has %d hashes, want %d" % (len(proof), inner + border))
    return _chain_border_right(_chain_inner(leaf_hash, proof[:inner], index), proof[inner:])


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check an RFC 6962 inclusion proof; raise VerificationError("bad_proof")."""
    if root_from_inclusion_proof(index, size, leaf_hash, proof) != root:
        raise VerificationError("bad_proof", "the inclusion proof does not lead to the root hash")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check an RFC 6962 consistency proof from the tree of size1 to the tree of size2;
    raise VerificationError("inconsistent"), or "malformed" when size2 < size1."""
    if size2 < size1:
        raise VerificationError("malformed", "size2 (%d) < size1 (%d)" % (size2, size1))
    if size1 == size2:
        if proof:
            raise VerificationError("inconsistent", "a consistency proof between trees of the same size is empty")
        if root1 != root2:
            raise VerificationError("inconsistent", "two trees of the same size have different roots")
        return
    if size1 == 0:
        if proof:
            raise VerificationError("inconsistent", "a consistency proof from the empty tree is empty")
        return
    if not proof:
        raise VerificationError("inconsistent", "empty consistency proof")
    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    seed, start = proof[0], 1
    if size1 == 1 << shift:
        seed, start = root1, 0
    if len(proof) != start + inner + border:
        raise VerificationError("inconsistent", "the consistency proof has %d hashes, want %d" % (len(proof), start + inner + border))
    p: List[bytes] = list(proof[start:])
    mask = (size1 - 1) >> shift
    if _chain_border_right(_chain_inner_right(seed, p[:inner], mask), p[inner:]) != root1:
        raise VerificationError("inconsistent", "the consistency proof does not lead to the old root")
    if _chain_border_right(_chain_inner(seed, p[:inner], mask), p[inner:]) != root2:
        raise VerificationError("inconsistent", "the consistency proof does not lead to the new root")
