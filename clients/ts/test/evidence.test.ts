// The client's calls of execution evidence (wire contract §2b–§2e) against
// a local HTTP server that answers with receipts of a real log of the
// evidence entries of testdata/verify/entries.json, signed with the test
// log key: a claim recorded with a violation (409 and its receipt), a
// revocation, a batch, an authorization's status and the keys.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, webcrypto } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { Client, parseNoteKey, ViolationError, VerificationError, verifyWithKeys } from "../src/index.js";
import { testdata } from "./helpers.js";

const h = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(createHash("sha256").update(Buffer.concat(parts)).digest());
const leafHash = (l: Uint8Array): Uint8Array => h(new Uint8Array([0]), l);
const node = (a: Uint8Array, b: Uint8Array): Uint8Array => h(new Uint8Array([1]), a, b);
const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");

/** RFC 6962 root and inclusion proof of the leaves' hashes. */
function root(hs: Uint8Array[]): Uint8Array {
  if (hs.length === 1) return hs[0]!;
  let k = 1;
  while (k * 2 < hs.length) k *= 2;
  return node(root(hs.slice(0, k)), root(hs.slice(k)));
}
function proof(i: number, hs: Uint8Array[]): Uint8Array[] {
  if (hs.length === 1) return [];
  let k = 1;
  while (k * 2 < hs.length) k *= 2;
  return i < k ? [...proof(i, hs.slice(0, k)), root(hs.slice(k))] : [...proof(i - k, hs.slice(k)), root(hs.slice(0, k))];
}

const leafOf = (name: string): string =>
  (JSON.parse(readFileSync(`${testdata}/verify/entries.json`, "utf8")).cases as { name: string; leaf: string }[]).find((c) => c.name === name)!.leaf;
const leaves = ["evidence: an allow with max_executions and executor", "evidence: a claim with a violation", "evidence: a revocation", "evidence: a key entry"].map(leafOf);
const ids = ["d-1", "e-1", "r-1", "test-artifact-1"];

/** receipts are the JSON receipts of the leaves against the checkpoint of the log of all of them. */
async function receipts(): Promise<{ checkpoint: string; receipts: Record<string, unknown>[] }> {
  const skey = readFileSync(`${testdata}/keys/log.key`, "utf8").trim().split("+");
  const seed = Buffer.from(skey[4]!, "base64").subarray(1);
  const key = await webcrypto.subtle.importKey("pkcs8", Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]), { name: "Ed25519" }, false, ["sign"]);
  const bytes = leaves.map((l) => new TextEncoder().encode(l));
  const hs = bytes.map(leafHash);
  const body = `example.com/govlog\n${leaves.length}\n${b64(root(hs))}\n`;
  const sig = new Uint8Array(await webcrypto.subtle.sign("Ed25519", key, new TextEncoder().encode(body)));
  const checkpoint = `${body}\n— example.com/govlog ${b64(Buffer.concat([Buffer.from(skey[3]!, "hex"), sig]))}\n`;
  return {
    checkpoint,
    receipts: bytes.map((l, i) => {
      const p = proof(i, hs).map(b64);
      const tlog = `c2sp.org/tlog-proof@v1\nextra ${b64(l)}\nindex ${i}\n${p.map((x) => x + "\n").join("")}\n${checkpoint}`;
      return { id: ids[i], index: i, leaf_hash: b64(hs[i]!), entry: b64(l), checkpoint, inclusion_proof: p, tlog_proof: tlog };
    }),
  };
}

test("claims, violations, revocations, batches, authorization status and keys", async () => {
  const { checkpoint, receipts: rs } = await receipts();
  const requests: string[] = [];
  const srv = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      requests.push(`${req.method} ${req.url} ${body}`);
      const json = (status: number, v: unknown): void => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(v));
      };
      switch (`${req.method} ${req.url}`) {
        case "POST /v1/executions":
          return json(409, { error: { code: "uses_exhausted", message: "the authorization permits 3 executions" }, receipt: rs[1] });
        case "POST /v1/revocations":
          return json(201, rs[2]);
        case "POST /v1/decisions/batch":
          return json(200, { results: [rs[0], { error: { code: "invalid_decision", message: "subject: is required" } }] });
        case "GET /v1/authorizations/d-1":
          return json(200, { decision_id: "d-1", status: "revoked", authorized_until: "2026-11-25T18:05:00Z", max_executions: 3, uses: 0, checkpoint, receipts: [rs[0], rs[1], rs[2]] });
        case "GET /v1/authorizations/d-2":
          return json(200, { decision_id: "d-2", status: "revoked", checkpoint, receipts: [rs[0]] });
        case "GET /v1/keys":
          return json(200, { keys: [{ kid: "test-artifact-1", jwk: {}, index: 3, receipt: rs[3] }] });
      }
      json(404, { error: { code: "not_found", message: "no" } });
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  try {
    const logKey = parseNoteKey(readFileSync(`${testdata}/keys/log.vkey`, "utf8"));
    const c = new Client(url, { logKey });
    const claim = JSON.parse(leaves[1]!).execution as Record<string, unknown>;
    const report = { ...claim, artifact: "eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJkLTEifQ.c2ln" };
    await assert.rejects(c.claim(report), (e: unknown) => {
      assert.ok(e instanceof ViolationError);
      assert.equal(e.status, 409);
      assert.equal(e.code, "uses_exhausted");
      assert.equal(e.receipt.index, 1);
      assert.equal(e.verified?.entry.violation, "uses_exhausted");
      return true;
    });
    // The receipt must hold the submitted report: another one is a lie.
    await assert.rejects(c.claim({ ...report, id: "e-9" }), (e: unknown) => e instanceof VerificationError && e.code === "mismatch");

    const rev = JSON.parse(leaves[2]!).revocation as Record<string, unknown>;
    const r = await c.revoke(rev);
    assert.equal(r.verified?.entry.kind, "revocation");
    assert.equal(r.verified?.entry.revocation?.decisionId, "d-1");

    const allow = JSON.parse(leaves[0]!).decision as Record<string, unknown>;
    const batch = await c.submitDecisions([allow, { id: "d-2" }]);
    assert.equal(batch.length, 2);
    assert.ok(batch[0]!.ok && batch[0]!.verified?.entry.decision?.maxExecutions === 3);
    assert.ok(!batch[1]!.ok && batch[1]!.error.code === "invalid_decision");
    assert.match(requests.find((q) => q.startsWith("POST /v1/decisions/batch"))!, /^POST \/v1\/decisions\/batch \{"decisions":\[\{/);

    const st = await c.authorization("d-1");
    assert.equal(st.status, "revoked");
    assert.deepEqual(st.verified?.map((v) => v.entry.kind), ["decision", "execution", "revocation"]);
    await assert.rejects(c.authorization("d-2"), (e: unknown) => e instanceof VerificationError && e.code === "mismatch");

    const keys = await c.keys();
    assert.equal(keys.keys[0]!.verified?.key.kid, "test-artifact-1");
    await assert.rejects(verifyWithKeys("a.b.c", keys.body, logKey), (e: unknown) => e instanceof VerificationError);
  } finally {
    await new Promise((r) => srv.close(r));
  }
});
