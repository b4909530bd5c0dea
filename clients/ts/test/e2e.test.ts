// End to end: the client and the verifiers against a real govlogd (the
// binary of GOVLOGD, or the repository's bin/govlogd from make build).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  Client,
  VerificationError,
  parseNoteKey,
  verifyArtifact,
  verifyReceipt,
  verifyReceiptJSON,
  type NoteVerifier,
  type Submitted,
  ViolationError,
  verifyBundle,
  verifyWithKeys,
} from "../src/index.js";

const binary = process.env["GOVLOGD"] ?? fileURLToPath(new URL("../../../../bin/govlogd", import.meta.url));
// CI must run this test, not skip it; locally, build the binary with make build.
const skip = !existsSync(binary) && process.env["CI"] !== "true" ? `no govlogd at ${binary} (make build)` : false;

const AUDIENCE = "runtime.e2e.test";
let daemon: ChildProcess | undefined;
let dataDir = "";
let url = "";
let logKey: NoteVerifier;

before(async () => {
  if (skip) return;
  dataDir = mkdtempSync(join(tmpdir(), "govlog-ts-e2e-"));
  // A port the kernel chooses, read from govlogd's "serving" line: a port
  // found free and given up before govlogd takes it could be taken by
  // another process in between.
  let output = "";
  daemon = spawn(binary, ["--listen", "127.0.0.1:0", "--data", dataDir, "--origin", "e2e.govlog.test/ts", "--artifact-audience", AUDIENCE], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  daemon.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  daemon.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (daemon.exitCode !== null) throw new Error(`govlogd exited:\n${output}`);
    const addr = /msg="govlogd serving" addr=(\S+)/.exec(output)?.[1];
    if (addr) {
      url = `http://${addr}`;
      try {
        if ((await fetch(`${url}/readyz`)).status === 200) break;
      } catch {
        // not listening yet
      }
    }
    if (Date.now() > deadline) throw new Error(`govlogd not ready after 60s:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  logKey = parseNoteKey(readFileSync(join(dataDir, "log.vkey"), "utf8"));
});

after(() => {
  daemon?.kill("SIGKILL");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function decision(id: string, outcome: "allow" | "deny"): object {
  return {
    id,
    outcome,
    decided_at: new Date().toISOString(),
    subject: "agent-7",
    action: "deploy",
    resource: "svc/payments",
    policy: { id: "prod-deploy", version: "7" },
    context: { ticket: "OPS-1", replicas: 3, ratio: 0.25 },
  };
}

/** mangled returns every copy of data with one byte XORed with 1. */
function* mangled(data: Uint8Array): Generator<Uint8Array> {
  for (let i = 0; i < data.length; i++) {
    const m = data.slice();
    m[i]! ^= 1;
    yield m;
  }
}

test("a live allow: receipt, tlog-proof and artifact verify; a flipped byte anywhere fails", { skip }, async () => {
  const c = new Client(url, { logKey, audience: AUDIENCE });
  const d = decision("ts-allow-1", "allow");
  const got: Submitted = await c.submitDecision(d);
  assert.equal(got.created, true);
  assert.equal(got.verified?.entry.decision?.outcome, "allow");
  const artifact = got.receipt.artifact!;
  assert.ok(artifact, "an allow gets an artifact");

  // The three forms of the evidence, offline.
  const v = await verifyReceipt(got.receipt.tlog_proof, logKey);
  assert.equal(v.entry.id, "ts-allow-1");
  await verifyReceiptJSON(got.body, logKey);
  const claims = await c.verifyArtifact(artifact, { action: "deploy", resource: "svc/payments", subject: "agent-7", receipt: got.receipt.tlog_proof });
  assert.equal(claims.jti, "ts-allow-1");
  await assert.rejects(c.verifyArtifact(artifact, { action: "delete", resource: "svc/payments" }), (e: unknown) => e instanceof VerificationError && e.code === "not_authorized");

  // Every byte matters.
  const tlog = new TextEncoder().encode(got.receipt.tlog_proof);
  let n = 0;
  for (const m of mangled(tlog)) {
    await assert.rejects(verifyReceipt(m, logKey), VerificationError, `tlog-proof byte ${n++}`);
  }
  const jwks = await c.jwks();
  n = 0;
  for (const m of mangled(new TextEncoder().encode(artifact))) {
    await assert.rejects(verifyArtifact(new TextDecoder().decode(m), jwks, { receipt: v, audience: AUDIENCE }), VerificationError, `artifact byte ${n++}`);
  }

  // A resubmission gets the original receipt, artifact included; the same
  // id with other content is refused.
  const again = await c.submitDecision(d);
  assert.equal(again.created, false);
  assert.equal(again.body, got.body);
  const other = await c.submitDecision({ ...d, action: "delete" }).catch((e: unknown) => e);
  assert.ok(other instanceof Error && (other as { code?: string }).code === "id_conflict", String(other));
});

test("a live deny has no artifact; lookups verify", { skip }, async () => {
  const c = new Client(url, { logKey, audience: AUDIENCE });
  const deny = await c.submitDecision(decision("ts-deny-1", "deny"));
  assert.equal(deny.receipt.artifact, undefined);
  assert.equal(deny.verified?.entry.decision?.outcome, "deny");
  const allow = await c.submitDecision(decision("ts-allow-2", "allow"));
  const fetched = await c.getDecision("ts-allow-2");
  assert.equal(fetched.verified?.entry.id, "ts-allow-2");
  assert.equal(fetched.receipt.artifact, undefined);
  assert.ok(fetched.verified!.checkpoint.size >= allow.verified!.checkpoint.size);
  const cp = await c.checkpoint();
  assert.ok(cp.size >= 3n);
  await assert.rejects(c.getDecision("no-such-decision"), (e: unknown) => (e as { status?: number }).status === 404);
});

test("live execution evidence: the artifact checked with only the log key, a claim, a violation with its receipt, the status, a revocation", { skip }, async (t) => {
  const c = new Client(url, { logKey, audience: AUDIENCE });
  let keys: Awaited<ReturnType<Client["keys"]>>;
  try {
    keys = await c.keys();
  } catch (e) {
    if ((e as { status?: number }).status === 404) return t.skip("this govlogd serves no GET /v1/keys (no execution evidence yet)");
    throw e;
  }
  const allow = await c.submitDecision(decision("ts-allow-3", "allow"));
  const token = allow.receipt.artifact!;
  const { claims } = await verifyWithKeys(token, keys.body, logKey, { audience: AUDIENCE, expect: { action: "deploy", resource: "svc/payments", subject: "agent-7" } });
  assert.equal(claims.jti, "ts-allow-3");
  const at = new Date().toISOString();
  const claim = await c.claim({ id: "ts-exec-1", decision_id: "ts-allow-3", status: "started", at, runtime: "ts-e2e", artifact: token });
  assert.equal(claim.created, true);
  assert.equal(claim.verified?.entry.violation, "");
  assert.match(claim.verified?.entry.artifactDigest ?? "", /^sha256:[0-9a-f]{64}$/);
  // One execution is authorized: a second claim is recorded as a violation, with its receipt.
  await assert.rejects(c.claim({ id: "ts-exec-2", decision_id: "ts-allow-3", status: "started", at, artifact: token }), (e: unknown) => {
    assert.ok(e instanceof ViolationError, String(e));
    assert.equal(e.code, "uses_exhausted");
    assert.equal(e.verified?.entry.id, "ts-exec-2");
    return true;
  });
  const st = await c.authorization("ts-allow-3");
  assert.equal(st.status, "exhausted");
  assert.deepEqual(st.verified?.map((v) => v.entry.id), ["ts-allow-3", "ts-exec-1"]); // the decision and its accepted claim
  const allow4 = await c.submitDecision(decision("ts-allow-4", "allow"));
  const rev = await c.revoke({ id: "ts-rev-1", decision_id: "ts-allow-4", revoked_at: new Date().toISOString() });
  assert.equal(rev.verified?.entry.kind, "revocation");
  await assert.rejects(c.claim({ id: "ts-exec-3", decision_id: "ts-allow-4", status: "started", at: new Date().toISOString(), artifact: allow4.receipt.artifact }), (e: unknown) => e instanceof ViolationError && e.code === "revoked");

  // An evidence bundle of all that (GET /v1/export) verifies; a flipped byte of any proof hash does not.
  const resp = await fetch(`${url}/v1/export?decision_id=ts-allow-3`);
  if (resp.status === 404) return;
  const bundle = await resp.text();
  const b = await verifyBundle(bundle, logKey);
  assert.deepEqual(b.entries.map((e) => e.entry.id), ["ts-exec-1", "ts-exec-2"]);
  assert.ok(b.keys.length >= 1);
  const hash = /"inclusion_proof":\["([^"]+)"/.exec(bundle)![1]!;
  const flipped = hash.slice(0, 5) + (hash[5] === "A" ? "B" : "A") + hash.slice(6);
  await assert.rejects(verifyBundle(bundle.replace(hash, flipped), logKey), (e: unknown) => e instanceof VerificationError);
});
