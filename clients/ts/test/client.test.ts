// The REST client: retries as the Go SDK does, against a local HTTP server
// that answers what each test needs.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { APIError, Client, parseNoteKey, parseRetryAfter, VerificationError } from "../src/index.js";
import { testdata } from "./helpers.js";

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ url: string; close: () => Promise<void>; requests: string[] }> {
  const requests: string[] = [];
  const srv = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      requests.push(`${req.method} ${req.url}`);
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => srv.close(() => r())) };
}

function error(res: ServerResponse, status: number, code: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(JSON.stringify({ error: { code, message: `${code} happened` } }));
}

const receipt = readFileSync(`${testdata}/receipts/allow.json`, "utf8");
const decision = readFileSync(`${testdata}/decisions/valid/minimal.json`, "utf8");
const logKey = parseNoteKey(readFileSync(`${testdata}/keys/log.vkey`, "utf8"));

/** waits records the waits the client asked for, without waiting. */
function recorder(): { waits: number[]; sleep: (ms: number) => Promise<void> } {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

test("retries 503, 429, 502 and 504, honouring Retry-After", async () => {
  const statuses = [503, 429, 502, 504];
  const s = await serve((_req, _body, res) => {
    const st = statuses.shift();
    if (st === undefined) {
      res.writeHead(201, { "Content-Type": "application/json" });
      res.end(receipt);
    } else error(res, st, st === 429 ? "overloaded" : "log_unavailable", st === 503 ? { "Retry-After": "2" } : {});
  });
  try {
    const r = recorder();
    const c = new Client(s.url, { logKey, sleep: r.sleep });
    const got = await c.submitDecision(decision);
    assert.equal(got.created, true);
    assert.equal(got.verified?.entry.id, "d-1");
    assert.equal(s.requests.length, 5);
    assert.equal(r.waits[0], 2000); // Retry-After: 2
    for (const w of r.waits.slice(1)) assert.ok(w >= 100 && w <= 5000, `backoff ${w}`);
  } finally {
    await s.close();
  }
});

test("gives up after maxAttempts", async () => {
  const s = await serve((_req, _body, res) => error(res, 503, "log_unavailable"));
  try {
    const r = recorder();
    await assert.rejects(new Client(s.url, { maxAttempts: 3, sleep: r.sleep }).submitDecision(decision), /gave up after 3 attempts/);
    assert.equal(s.requests.length, 3);
  } finally {
    await s.close();
  }
});

test("does not retry a final error, and reads its code", async () => {
  for (const [status, code] of [
    [400, "invalid_decision"],
    [409, "id_conflict"],
    [413, "too_large"],
    [422, "unknown_parent"],
    [500, "internal"],
  ] as const) {
    const s = await serve((_req, _body, res) => error(res, status, code));
    try {
      const err = await new Client(s.url, { sleep: recorder().sleep }).submitDecision(decision).catch((e: unknown) => e);
      assert.ok(err instanceof APIError, String(err));
      assert.equal(err.status, status);
      assert.equal(err.code, code);
      assert.equal(s.requests.length, 1, `${status} is not retried`);
    } finally {
      await s.close();
    }
  }
});

test("a Retry-After longer than maxRetryWaitMs is returned, not waited", async () => {
  const s = await serve((_req, _body, res) => error(res, 429, "overloaded", { "Retry-After": "120" }));
  try {
    const r = recorder();
    await assert.rejects(new Client(s.url, { sleep: r.sleep }).submitDecision(decision), /retry after 120000 ms/);
    assert.deepEqual(r.waits, []);
  } finally {
    await s.close();
  }
});

test("retries when no answer came", async () => {
  // Nothing listens on port 1 (a port found free and closed could be
  // taken by another process meanwhile).
  const url = "http://127.0.0.1:1";
  const r = recorder();
  await assert.rejects(new Client(url, { maxAttempts: 2, sleep: r.sleep }).submitDecision(decision), /gave up after 2 attempts/);
  assert.equal(r.waits.length, 1);
});

test("a receipt that does not verify, or holds another decision, is refused", async () => {
  const tampered = receipt.replace('"index": 0', '"index": 1');
  for (const [body, code] of [
    [tampered, "mismatch"],
    [receipt, "mismatch"], // for another decision than the one submitted
  ] as const) {
    const s = await serve((_req, _body, res) => {
      res.writeHead(201, { "Content-Type": "application/json" });
      res.end(body);
    });
    try {
      const other = decision.replace('"deploy"', '"delete"');
      const err = await new Client(s.url, { logKey }).submitDecision(body === tampered ? decision : other).catch((e: unknown) => e);
      assert.ok(err instanceof VerificationError, String(err));
      assert.equal(err.code, code);
    } finally {
      await s.close();
    }
  }
});

test("parseRetryAfter", () => {
  const now = Date.parse("2026-11-25T18:00:00Z");
  assert.equal(parseRetryAfter("3", now), 3000);
  assert.equal(parseRetryAfter("Wed, 25 Nov 2026 18:00:05 GMT", now), 5000);
  assert.equal(parseRetryAfter("Wed, 25 Nov 2026 17:00:05 GMT", now), 0);
  assert.equal(parseRetryAfter("soon", now), 0);
  assert.equal(parseRetryAfter(null, now), 0);
  assert.equal(parseRetryAfter("-1", now), 0);
});
