// The browser bundle (npm run bundle): at most 60 KB minified, and it
// verifies what the package verifies.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { testdata } from "./helpers.js";

const bundle = fileURLToPath(new URL("../../dist/govlog.min.js", import.meta.url));
// CI builds the bundle before the tests; locally, npm run bundle.
const skip = !existsSync(bundle) && process.env["CI"] !== "true" ? "no bundle (npm run bundle)" : false;

test("the bundle is at most 60 KB and verifies a receipt", { skip }, async () => {
  const size = statSync(bundle).size;
  assert.ok(size <= 60 * 1024, `the bundle is ${size} bytes`);
  const m = (await import(bundle)) as typeof import("../src/index.js");
  const key = m.parseNoteKey(readFileSync(`${testdata}/keys/log.vkey`, "utf8"));
  const v = await m.verifyReceipt(readFileSync(`${testdata}/receipts/allow.tlog-proof`, "utf8"), key);
  assert.equal(v.entry.id, "d-1");
  await assert.rejects(m.verifyReceipt(readFileSync(`${testdata}/receipts/deny.tlog-proof`, "utf8").replace("index 1", "index 2"), key));
});
