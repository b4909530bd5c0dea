// Verification time of one receipt in Node: node build/bench/receipt.js
// (npm run bench). Each iteration verifies a receipt completely: the
// checkpoint's Ed25519 signature, the inclusion proof and the entry.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { JWKS, parseNoteKey, verifyArtifact, verifyBundle, verifyKeyBound, verifyReceipt, verifyReceiptJSON } from "../src/index.js";

const testdata = process.env["GOVLOG_TESTDATA"] ?? fileURLToPath(new URL("../../../../testdata/", import.meta.url));
const read = (p: string): string => readFileSync(`${testdata}/${p}`, "utf8");
const logKey = parseNoteKey(read("keys/log.vkey"));
const receipts = (JSON.parse(read("verify/receipts.json")) as { cases: { name: string; receipt?: string }[] }).cases;
const small = read("receipts/allow.tlog-proof");
const smallJSON = read("receipts/allow.json");
const big = receipts.find((c) => c.name === "entry 777 of 1000")!.receipt!;
const artifact = (JSON.parse(read("verify/artifacts.json")) as { cases: { name: string; token: string; jwks: string; now: number; receipt: string; audience: string }[] }).cases.find((c) => c.name === "allow")!;
const jwks = JWKS.parse(artifact.jwks);
const bound = await verifyReceipt(artifact.receipt, logKey);

async function bench(name: string, f: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 200; i++) await f(); // warm up
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const n = 1000;
    const t = performance.now();
    for (let i = 0; i < n; i++) await f();
    runs.push(((performance.now() - t) / n) * 1000);
  }
  runs.sort((a, b) => a - b);
  console.log(`${name.padEnd(52)} median ${runs[2]!.toFixed(0).padStart(5)} µs  (best ${runs[0]!.toFixed(0)}, worst ${runs[4]!.toFixed(0)})`);
}

console.log(`node ${process.version}`);
await bench("tlog-proof, 8-entry log (3 proof hashes)", () => verifyReceipt(small, logKey));
await bench("tlog-proof, 1000-entry log (10 proof hashes)", () => verifyReceipt(big, logKey));
await bench("JSON receipt, 8-entry log", () => verifyReceiptJSON(smallJSON, logKey));
await bench("artifact, bound to its verified receipt", () => verifyArtifact(artifact.token, jwks, { receipt: bound, audience: artifact.audience, now: artifact.now }));
const kb = (JSON.parse(read("verify/key-artifacts.json")) as { cases: { name: string; token: string; key_receipt: string; now: number; audience: string }[] }).cases.find((c) => c.name === "good")!;
await bench("artifact, with only the log key (key receipt + JWT)", () =>
  verifyKeyBound(kb.token, kb.key_receipt, logKey, { audience: kb.audience, now: kb.now, expect: { action: "deploy" } }),
);
const bundle = (JSON.parse(read("verify/bundles.json")) as { cases: { name: string; bundle: string }[] }).cases.find((c) => c.name === "good")!.bundle;
await bench("evidence bundle of 5 entries and 1 key", () => verifyBundle(bundle, logKey));
