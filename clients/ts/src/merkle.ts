// RFC 6962 Merkle tree proofs (SHA-256), as
// github.com/transparency-dev/merkle/proof verifies them.

import { equalBytes } from "./bytes.js";
import { nodeHash } from "./crypto.js";
import { fail } from "./errors.js";

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

function onesCount(n: bigint): number {
  let c = 0;
  for (const b of n.toString(2)) if (b === "1") c++;
  return c;
}

function trailingZeros(n: bigint): number {
  if (n === 0n) return 64;
  let z = 0;
  while ((n & 1n) === 0n) {
    n >>= 1n;
    z++;
  }
  return z;
}

/** decompose splits an inclusion proof of index in a tree of size into its inner and border parts. */
function decompose(index: bigint, size: bigint): [number, number] {
  const inner = bitLength(index ^ (size - 1n));
  return [inner, onesCount(index >> BigInt(inner))];
}

function chainInner(seed: Uint8Array, proof: readonly Uint8Array[], index: bigint): Uint8Array {
  proof.forEach((h, i) => {
    seed = ((index >> BigInt(i)) & 1n) === 0n ? nodeHash(seed, h) : nodeHash(h, seed);
  });
  return seed;
}

function chainInnerRight(seed: Uint8Array, proof: readonly Uint8Array[], index: bigint): Uint8Array {
  proof.forEach((h, i) => {
    if (((index >> BigInt(i)) & 1n) === 1n) seed = nodeHash(h, seed);
  });
  return seed;
}

function chainBorderRight(seed: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  for (const h of proof) seed = nodeHash(h, seed);
  return seed;
}

/**
 * rootFromInclusionProof computes the root hash of the tree of size in which
 * leafHash is at index, given an inclusion proof. It throws `bad_proof`.
 */
export function rootFromInclusionProof(index: bigint, size: bigint, leafHash: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  if (index >= size) fail("bad_proof", `index ${index} is not below the tree size ${size}`);
  if (leafHash.length !== 32) fail("bad_proof", `the leaf hash is ${leafHash.length} bytes, not 32`);
  const [inner, border] = decompose(index, size);
  if (proof.length !== inner + border) fail("bad_proof", `the inclusion proof has ${proof.length} hashes, want ${inner + border}`);
  return chainBorderRight(chainInner(leafHash, proof.slice(0, inner), index), proof.slice(inner));
}

/**
 * verifyInclusion checks an RFC 6962 inclusion proof of leafHash at index in
 * the tree of size whose root hash is root. It throws `bad_proof`.
 */
export function verifyInclusion(index: bigint, size: bigint, leafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  if (!equalBytes(rootFromInclusionProof(index, size, leafHash, proof), root)) {
    fail("bad_proof", "the inclusion proof does not lead to the root hash");
  }
}

/**
 * verifyConsistency checks an RFC 6962 consistency proof that the tree of
 * size1 with root1 is a prefix of the tree of size2 with root2. It throws
 * `inconsistent` when the proof does not verify, `malformed` when size2 <
 * size1.
 */
export function verifyConsistency(size1: bigint, size2: bigint, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): void {
  if (size2 < size1) fail("malformed", `size2 (${size2}) < size1 (${size1})`);
  if (size1 === size2) {
    if (proof.length > 0) fail("inconsistent", "a consistency proof between trees of the same size is empty");
    if (!equalBytes(root1, root2)) fail("inconsistent", "two trees of the same size have different roots");
    return;
  }
  if (size1 === 0n) {
    if (proof.length > 0) fail("inconsistent", "a consistency proof from the empty tree is empty");
    return;
  }
  if (proof.length === 0) fail("inconsistent", "empty consistency proof");
  let [inner, border] = decompose(size1 - 1n, size2);
  const shift = trailingZeros(size1);
  inner -= shift;
  let seed = proof[0]!;
  let start = 1;
  if (size1 === 1n << BigInt(shift)) {
    seed = root1;
    start = 0;
  }
  if (proof.length !== start + inner + border) {
    fail("inconsistent", `the consistency proof has ${proof.length} hashes, want ${start + inner + border}`);
  }
  const p = proof.slice(start);
  const mask = (size1 - 1n) >> BigInt(shift);
  const hash1 = chainBorderRight(chainInnerRight(seed, p.slice(0, inner), mask), p.slice(inner));
  if (!equalBytes(hash1, root1)) fail("inconsistent", "the consistency proof does not lead to the old root");
  const hash2 = chainBorderRight(chainInner(seed, p.slice(0, inner), mask), p.slice(inner));
  if (!equalBytes(hash2, root2)) fail("inconsistent", "the consistency proof does not lead to the new root");
}
