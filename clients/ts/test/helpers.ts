// Small helpers of the tests.

import { fileURLToPath } from "node:url";
import { leafHash as lh } from "../src/crypto.js";
import { hex as h } from "../src/bytes.js";

/** testdata is the repository's testdata directory. */
export const testdata = process.env["GOVLOG_TESTDATA"] ?? fileURLToPath(new URL("../../../../testdata/", import.meta.url));

export function leafHash(leaf: string): Uint8Array {
  return lh(new TextEncoder().encode(leaf));
}

export const hex = h;
