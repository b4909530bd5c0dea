// Unit tests of the explorer's own parsing (src/verify.ts), bundled for
// Node with the esbuild of the lockfile: the tlog-tiles entry-bundle
// parser (table cases and a randomized round trip, a fuzz test of sorts:
// every well-formed bundle parses back to its entries, a truncated one
// is refused unless cut at an entry boundary) and the tile paths.

import { test, before } from "node:test";
import assert from "node:assert/strict";
import { build } from "esbuild";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes, randomInt } from "node:crypto";

let m;
before(async () => {
  const dir = mkdtempSync(join(tmpdir(), "govlog-explorer-unit-"));
  const out = join(dir, "verify.mjs");
  await build({
    entryPoints: [fileURLToPath(new URL("../src/verify.ts", import.meta.url))],
    outfile: out,
    bundle: true,
    format: "esm",
    platform: "node",
    nodePaths: [fileURLToPath(new URL("../node_modules", import.meta.url))],
    logLevel: "warning",
  });
  m = await import(out);
  rmSync(dir, { recursive: true, force: true });
});

test("tilePath follows C2SP tlog-tiles", () => {
  const cases = [
    [0n, 1n, "/tile/entries/000.p/1"],
    [0n, 256n, "/tile/entries/000"],
    [255n, 300n, "/tile/entries/000"],
    [256n, 300n, "/tile/entries/001.p/44"],
    [256n * 999n, 256n * 1000n, "/tile/entries/999"],
    [256n * 1000n, 256n * 1000n + 5n, "/tile/entries/x001/000.p/5"],
    [256n * 1234067n + 3n, 256n * 1234068n, "/tile/entries/x001/x234/067"],
  ];
  for (const [index, size, want] of cases) assert.equal(m.tilePath(index, size), want, `${index} in ${size}`);
});

function bundle(entries) {
  const parts = [];
  for (const e of entries) parts.push(Buffer.from([e.length >> 8, e.length & 0xff]), e);
  return new Uint8Array(Buffer.concat(parts));
}

test("bundleEntries reads entry bundles and refuses damaged ones", () => {
  assert.deepEqual(m.bundleEntries(new Uint8Array(0)), []);
  const e = [Buffer.from("{}"), Buffer.alloc(0), Buffer.alloc(65535, 0x61)];
  assert.deepEqual(m.bundleEntries(bundle(e)).map((x) => Buffer.from(x)), e);
  for (const bad of [[0], [0, 3, 1, 2], [0, 1]]) assert.throws(() => m.bundleEntries(new Uint8Array(bad)), /ends inside/);
  assert.throws(() => m.bundleEntries(bundle(Array.from({ length: 257 }, () => Buffer.from("x")))), /more than 256/);
});

test("bundleEntries: random bundles round-trip, a truncated one is refused or, cut at an entry boundary, reads as a prefix", () => {
  for (let round = 0; round < 300; round++) {
    const entries = Array.from({ length: randomInt(1, 20) }, () => randomBytes(randomInt(0, 600)));
    const b = bundle(entries);
    assert.deepEqual(m.bundleEntries(b).map((x) => Buffer.from(x)), entries);
    const cut = randomInt(1, b.length);
    let got;
    try {
      got = m.bundleEntries(b.subarray(0, cut));
    } catch {
      continue;
    }
    // A cut at an entry boundary is a shorter well-formed bundle: a prefix of the entries.
    assert.deepEqual(got.map((x) => Buffer.from(x)), entries.slice(0, got.length));
    assert.ok(got.length < entries.length);
  }
});

test("entryKind names the kind of an entry", () => {
  const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
  assert.equal(m.entryKind(enc({ decision: {}, v: 1 })), "decision");
  assert.equal(m.entryKind(enc({ execution: {}, v: 1 })), "execution");
  assert.equal(m.entryKind(enc({ revocation: {}, v: 1 })), "revocation");
  assert.equal(m.entryKind(enc({ key: {}, v: 1 })), "key");
  assert.equal(m.entryKind(new Uint8Array([0xff])), "unreadable");
});

test("decodeB64 is strict", () => {
  assert.deepEqual(Buffer.from(m.decodeB64("AAEC")), Buffer.from([0, 1, 2]));
  for (const bad of ["AAE", "AA-C", "AA\nEC", "====x"]) assert.throws(() => m.decodeB64(bad));
});
