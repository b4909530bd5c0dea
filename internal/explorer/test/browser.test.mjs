// The explorer in a real headless Chromium (Debian's chromium, driven by
// playwright-core) against a real govlogd (GOVLOGD, default bin/govlogd):
// search finds a deny, its entry page shows "verified" after the page's
// own checks, the same page served through a proxy that tampers with the
// entry tiles shows "FAILED", a dropped .tlog-proof verifies, read
// authentication asks for a token, and the pages hold at phone width with
// a 1,024-char resource name. With EXPLORER_SCREENSHOTS=DIR it writes the
// screenshots of docs/explorer.md into DIR.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const binary = process.env.GOVLOGD ?? fileURLToPath(new URL("../../../bin/govlogd", import.meta.url));
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const shots = process.env.EXPLORER_SCREENSHOTS;

// Fail, never skip: the browser and the binary are what this test is about.
assert.ok(existsSync(binary), `no govlogd at ${binary}: run make build`);
assert.ok(existsSync(browserPath), `no Chromium at ${browserPath}: install Debian's chromium package (apt-get install chromium)`);

const cleanups = [];
let browser;

const bin = (name) => join(binary, "..", name);
const ORIGIN = "demo.govlog.example/log";

// start runs a binary until the tests end, on a port the kernel chooses
// (--listen 127.0.0.1:0): it reads the address from the binary's
// "serving" line, waits for its probe and returns its URL. (A port found
// free and given up before the binary takes it could be taken by another
// process in between.)
async function start(what, path, args, probe) {
  const p = spawn(path, ["--listen", "127.0.0.1:0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  p.stdout.on("data", (d) => (output += d));
  p.stderr.on("data", (d) => (output += d));
  cleanups.push(() => p.kill("SIGKILL"));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (p.exitCode !== null) throw new Error(`${what} exited:\n${output}`);
    const addr = /msg="govlog(?:d|-witness) serving" addr=(\S+)/.exec(output)?.[1];
    if (addr) {
      try {
        if ((await fetch(`http://${addr}${probe}`)).status === 200) return `http://${addr}`;
      } catch {
        // not listening yet
      }
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// startLog runs govlogd on a new log; with a witness, a govlog-witness
// cosigns its checkpoints (sync mode: every receipt is cosigned).
async function startLog({ extra = [], witness = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "govlog-explorer-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const args = ["--data", join(dir, "log"), "--origin", ORIGIN, ...extra];
  if (witness) {
    const keygen = spawnSync(bin("govlog"), ["keygen", "--name", ORIGIN, "--out", join(dir, "log")]);
    assert.equal(keygen.status, 0, String(keygen.stderr));
    const wurl = await start("govlog-witness", bin("govlog-witness"), ["--data", join(dir, "witness"), "--name", "witness.demo.example/w1", "--log-key", join(dir, "log", "log.vkey")], "/healthz");
    const wkey = readFileSync(join(dir, "witness", "witness.vkey"), "utf8").trim();
    writeFileSync(join(dir, "policy.txt"), `witness w1 ${wkey} ${wurl}\nquorum w1\n`);
    args.push("--witness-policy", join(dir, "policy.txt"), "--witness-mode", "sync");
  }
  const url = await start("govlogd", binary, args, "/readyz");
  return { url, dir };
}

async function post(url, path, body, headers = {}) {
  const resp = await fetch(url + path, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
  return { status: resp.status, body: await resp.json() };
}

const now = () => new Date(Date.now() - 1000).toISOString().replace(/\.\d+Z$/, "Z");

// startTamperingProxy forwards to target, flipping one byte in the middle
// of every entry bundle (/tile/entries/…) it passes on.
async function startTamperingProxy(target) {
  const srv = createServer((req, res) => {
    const up = request(target + req.url, { method: req.method, headers: { ...req.headers, host: new URL(target).host, "accept-encoding": "identity" } }, (r) => {
      const chunks = [];
      r.on("data", (c) => chunks.push(c));
      r.on("end", () => {
        let body = Buffer.concat(chunks);
        if (req.url.startsWith("/tile/entries/") && r.statusCode === 200 && body.length > 0) {
          body = Buffer.from(body);
          body[body.length >> 1] ^= 0x01;
        }
        const headers = { ...r.headers, "content-length": String(body.length) };
        delete headers["transfer-encoding"];
        res.writeHead(r.statusCode, headers);
        res.end(body);
      });
    });
    req.pipe(up);
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  cleanups.push(() => srv.close());
  return `http://127.0.0.1:${srv.address().port}`;
}

let log; // { url, dir }
let denyIndex;
let denyReceipt;
let violations = 0;
let violationIndex;
let revocationIndex;
let allowIndex;
let logSize; // after the setup's submissions
let childIndex;
let deniedChildIndex;
const longResource = "bucket/" + "x".repeat(1017);

before(async () => {
  browser = await chromium.launch({ executablePath: browserPath, headless: true, args: ["--no-sandbox"] });
  log = await startLog({ witness: true });
  const allow = await post(log.url, "/v1/decisions", {
    id: "deploy-1", outcome: "allow", decided_at: now(), subject: "agent-7", action: "deploy", resource: "svc/payments",
    policy: { id: "prod-deploy", version: "v3" }, reasons: ["change window open"],
  });
  assert.equal(allow.status, 201, JSON.stringify(allow.body));
  const child = await post(log.url, "/v1/decisions", {
    id: "deploy-1.migrate", outcome: "allow", decided_at: now(), subject: "agent-7", action: "db.migrate", resource: "db/payments",
    policy: { id: "prod-deploy" }, parent_id: "deploy-1",
  });
  assert.equal(child.status, 201, JSON.stringify(child.body));
  // A denied child of deploy-1, by another subject (agent-7's entries are counted below).
  const deniedChild = await post(log.url, "/v1/decisions", {
    id: "deploy-1.wipe-cache", outcome: "deny", decided_at: now(), subject: "agent-8", action: "cache.wipe", resource: "cache/payments",
    policy: { id: "prod-deploy" }, parent_id: "deploy-1",
  });
  assert.equal(deniedChild.status, 201, JSON.stringify(deniedChild.body));
  allowIndex = allow.body.index;
  childIndex = child.body.index;
  deniedChildIndex = deniedChild.body.index;
  const claim = await post(log.url, "/v1/executions", { id: "run-1", decision_id: "deploy-1", status: "started", at: now(), runtime: "runner-a", artifact: allow.body.artifact });
  assert.equal(claim.status, 201, JSON.stringify(claim.body));
  const noArtifact = await post(log.url, "/v1/executions", { id: "run-2", decision_id: "deploy-1.migrate", status: "started", at: now(), runtime: "runner-b" });
  // A claim without its artifact: recorded as a violation (409) where the
  // log judges executions (API v1.1), accepted by a log that does not yet.
  assert.ok([201, 409].includes(noArtifact.status), JSON.stringify(noArtifact.body));
  const recorded = noArtifact.body.receipt ?? noArtifact.body;
  violationIndex = recorded.index;
  violations = JSON.parse(Buffer.from(recorded.entry, "base64").toString()).violation === "artifact_missing" ? 1 : 0;
  const deny = await post(log.url, "/v1/decisions", {
    id: "drop-table-9", outcome: "deny", decided_at: now(), subject: "agent-7", action: "db.drop_table", resource: longResource,
    policy: { id: "prod-data-safety", version: "2026-11" }, reasons: ["destructive action outside a change window", "<script>alert(1)</script>"],
  });
  assert.equal(deny.status, 201, JSON.stringify(deny.body));
  denyIndex = deny.body.index;
  denyReceipt = deny.body.tlog_proof;
  // A revocation (API v1.1), where the log takes them.
  const rev = await post(log.url, "/v1/revocations", { id: "rev-1", decision_id: "deploy-1.migrate", revoked_at: now(), reason: "change window closed" });
  assert.ok([201, 404].includes(rev.status), JSON.stringify(rev.body));
  revocationIndex = rev.status === 201 ? rev.body.index : undefined;
  for (let i = 0; i < 3; i++) {
    const r = await post(log.url, "/v1/decisions", { id: `read-${i}`, outcome: "allow", decided_at: now(), subject: `agent-${i}`, action: "read", resource: `doc/${i}`, policy: { id: "reads" } });
    assert.equal(r.status, 201);
    logSize = r.body.index + 1;
  }
});

after(async () => {
  await browser?.close();
  for (const c of cleanups.reverse()) c();
});

async function newPage(width = 1280, height = 900) {
  const ctx = await browser.newContext({ viewport: { width, height } });
  const page = await ctx.newPage();
  const problems = [];
  // Script errors and Content-Security-Policy violations (a 404 of an
  // optional endpoint is logged by the browser too: not a problem).
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  return { page, problems, ctx };
}

async function ready(page) {
  await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });
}

async function shot(page, name) {
  if (shots) await page.screenshot({ path: join(shots, name), fullPage: true });
}

test("the log at a glance verifies the latest checkpoint and lists decisions", async () => {
  const { page, problems, ctx } = await newPage();
  await page.goto(log.url + "/");
  await ready(page);
  assert.equal(await page.getAttribute("[data-verdict]", "data-verdict"), "verified");
  assert.equal(await page.textContent("[data-size]"), String(logSize));
  assert.match(await page.textContent(".cards"), /w1 cosigned at 20\d\d-/);
  assert.ok(await page.locator('tr[data-outcome="deny"]').count() >= 1);
  assert.equal(await page.locator('tr[data-violation="artifact_missing"]').count(), violations);
  await shot(page, "overview.png");
  // A second visit checks consistency with the checkpoint the first one remembered.
  await post(log.url, "/v1/decisions", { id: "later-1", outcome: "allow", decided_at: now(), subject: "agent-9", action: "read", policy: { id: "reads" } });
  await page.reload();
  await ready(page);
  assert.match(await page.textContent(".verdict"), new RegExp(`consistency proof .*extends the tree of size ${logSize} `));
  assert.deepEqual(problems, []);
  await ctx.close();
});

test("search finds a deny, and its entry page verifies it in the browser", async () => {
  const { page, problems, ctx } = await newPage();
  await page.goto(log.url + "/search");
  await ready(page);
  await page.selectOption("#f-outcome", "deny");
  await page.fill("#f-subject", "agent-7");
  await Promise.all([page.waitForURL(/\/search\?/), page.click("button[type=submit]")]);
  await ready(page);
  const row = page.locator('tr[data-outcome="deny"]');
  assert.equal(await row.count(), 1);
  assert.doesNotMatch(await page.textContent("#results"), /no search endpoint/);
  // The results as an evidence bundle, saved by the page.
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export")]);
  const saved = join(log.dir, "evidence.json");
  await download.saveAs(saved);
  const bundle = JSON.parse(readFileSync(saved, "utf8"));
  assert.equal(bundle.format, "govlog-evidence/v1");
  assert.deepEqual(bundle.entries.map((e) => e.index), [denyIndex]);
  await shot(page, "search.png");
  await Promise.all([page.waitForURL(/\/entries\/\d+$/), row.locator("td.num a").click()]);
  assert.ok(page.url().endsWith(`/entries/${denyIndex}`));
  await page.waitForSelector('[data-verdict="verified"], [data-verdict="failed"]');
  await ready(page);
  assert.equal(await page.getAttribute("[data-verdict]", "data-verdict"), "verified");
  const text = await page.textContent("main");
  assert.match(text, /This action was denied at .* by policy prod-data-safety \(version 2026-11\)/);
  assert.match(text, /This log could not have hidden or changed it since/);
  assert.match(text, /inclusion proof/);
  assert.match(text, /signed by the log key demo\.govlog\.example\/log/);
  assert.match(text, /witness policy satisfied: cosigned by w1/);
  assert.match(text, /and the witnesses w1 \(cosigned at 20\d\d-/);
  // Logged text is text, never markup.
  assert.equal(await page.locator("main script").count(), 0);
  assert.match(text, /<script>alert\(1\)<\/script>/);
  assert.match(text, /the receipt verifies/);
  await shot(page, "entry.png");
  assert.deepEqual(problems, []);
  await ctx.close();
});

test("an entry page links its lineage and lists the reports that name it", async () => {
  const { page, problems, ctx } = await newPage();
  await page.goto(`${log.url}/entries/${allowIndex}`);
  await page.waitForSelector("#related table, #related p");
  await page.waitForFunction(() => document.querySelector("#receipt-checks") !== null);
  assert.equal(await page.getAttribute("[data-verdict]", "data-verdict"), "verified");
  const related = await page.textContent("#related");
  assert.match(related, /run-1/);
  // Its children, each linked and marked allow or deny (from /v1/search?parent_id=).
  const children = page.locator("#children tbody tr");
  assert.equal(await children.count(), 2);
  assert.equal(await children.nth(0).getAttribute("data-outcome"), "allow");
  assert.match(await children.nth(0).textContent(), /allow.*deploy-1\.migrate/);
  assert.ok(await children.nth(0).locator(`a[href="/entries/${childIndex}"]`).count() >= 1);
  assert.equal(await children.nth(1).getAttribute("data-outcome"), "deny");
  assert.match(await children.nth(1).textContent(), /deny.*deploy-1\.wipe-cache/);
  assert.ok(await children.nth(1).locator(`a[href="/entries/${deniedChildIndex}"]`).count() >= 1);
  await page.goto(`${log.url}/entries/${childIndex}`);
  await page.waitForSelector(`#parent a[href="/entries/${allowIndex}"]`);
  await page.waitForFunction(() => document.querySelector("#receipt-checks") !== null);
  assert.match(await page.textContent("#children"), /No decision names this one as its parent/);
  // A deny has no children: the page says why rather than asking.
  await page.goto(`${log.url}/entries/${deniedChildIndex}`);
  await page.waitForSelector(`#parent a[href="/entries/${allowIndex}"]`);
  await page.waitForSelector("#children p");
  assert.match(await page.textContent("#children"), /Lineage stops at a deny/);
  if (revocationIndex !== undefined) {
    // The revoked decision says so; the revocation's page verifies and links it.
    await page.goto(`${log.url}/entries/${childIndex}`);
    await page.waitForFunction(() => document.querySelector("#receipt-checks") !== null);
    assert.match(await page.textContent("#related"), /status\s*revoked/i);
    await page.goto(`${log.url}/entries/${revocationIndex}`);
    await page.waitForFunction(() => document.querySelector("#receipt-checks") !== null);
    assert.equal(await page.getAttribute("[data-verdict]", "data-verdict"), "verified");
    assert.match(await page.textContent("[data-verdict]"), /The authorization of decision deploy-1\.migrate was revoked at/);
    assert.match(await page.textContent("#receipt-checks"), /the receipt verifies/);
    await page.waitForSelector(`#parent a[href="/entries/${childIndex}"]`);
  }
  // An execution report the log recorded with a violation: verified, and said.
  await page.goto(`${log.url}/entries/${violationIndex}`);
  await ready(page);
  assert.equal(await page.getAttribute("[data-verdict]", "data-verdict"), "verified");
  if (violations) assert.match(await page.textContent("[data-verdict]"), /recorded it as a violation: artifact_missing/);
  await page.waitForSelector(`#parent a[href="/entries/${childIndex}"]`);
  assert.deepEqual(problems, []);
  await ctx.close();
});

test("a tampered entry tile makes the same page show FAILED", async () => {
  const proxy = await startTamperingProxy(log.url);
  const { page, ctx } = await newPage();
  await page.goto(`${proxy}/entries/${denyIndex}`);
  await page.waitForSelector('[data-verdict="verified"], [data-verdict="failed"]');
  await ready(page);
  assert.equal(await page.getAttribute("[data-verdict]", "data-verdict"), "failed");
  const box = await page.textContent("[data-verdict]");
  assert.match(box, /FAILED/);
  assert.match(box, /inclusion proof of entry/);
  assert.doesNotMatch(box, /could not have hidden or changed it/);
  await shot(page, "entry-failed.png");
  await ctx.close();
});

test("a dropped .tlog-proof verifies in the page, a damaged one fails", async () => {
  const { page, problems, ctx } = await newPage();
  await page.goto(log.url + "/verify");
  await ready(page);
  const drop = async (name, text) => {
    const dt = await page.evaluateHandle(
      ([n, t]) => {
        const d = new DataTransfer();
        d.items.add(new File([t], n, { type: "text/plain" }));
        return d;
      },
      [name, text],
    );
    await page.dispatchEvent("#drop", "drop", { dataTransfer: dt });
    await page.waitForSelector("#result [data-verdict]");
    return page.getAttribute("#result [data-verdict]", "data-verdict");
  };
  assert.equal(await drop("drop-table-9.tlog-proof", denyReceipt), "verified");
  assert.match(await page.textContent("#result"), /This action was denied/);
  await shot(page, "verify.png");
  // One changed character of the entry (the extra line): the proof fails.
  const lines = denyReceipt.split("\n");
  const i = lines.findIndex((l) => l.startsWith("extra "));
  const bad = lines.slice();
  bad[i] = bad[i].slice(0, -3) + (bad[i].at(-3) === "A" ? "B" : "A") + bad[i].slice(-2);
  assert.equal(await drop("bad.tlog-proof", bad.join("\n")), "failed");
  // An evidence bundle: every entry's inclusion proof against its checkpoint.
  const bundle = await (await fetch(log.url + "/v1/export?subject=agent-7")).text();
  assert.equal(await drop("evidence.json", bundle), "verified");
  assert.match(await page.textContent("#result"), /1 × deny/);
  const b = JSON.parse(bundle);
  b.entries[0].entry = Buffer.from(Buffer.from(b.entries[0].entry, "base64").toString().replace("agent-7", "agent-8")).toString("base64");
  assert.equal(await drop("evidence.json", JSON.stringify(b)), "failed");
  // The file input works too (keyboard users).
  const file = join(log.dir, "receipt.tlog-proof");
  writeFileSync(file, denyReceipt);
  await page.setInputFiles("#file", file);
  await page.waitForFunction(() => document.querySelector("#result [data-verdict]")?.getAttribute("data-verdict") === "verified");
  assert.deepEqual(problems, []);
  await ctx.close();
});

test("the checkpoint page checks consistency with a pasted earlier checkpoint", async () => {
  const { page, ctx } = await newPage();
  const earlier = await (await fetch(log.url + "/v1/checkpoint")).text();
  await post(log.url, "/v1/decisions", { id: "later-2", outcome: "deny", decided_at: now(), subject: "agent-9", action: "write", policy: { id: "reads" } });
  await page.goto(log.url + "/checkpoints");
  await ready(page);
  assert.equal(await page.getAttribute("[data-verdict]", "data-verdict"), "verified");
  await page.fill("#earlier", earlier);
  await page.click("#main form button");
  await page.waitForSelector("#consistency [data-verdict]");
  assert.equal(await page.getAttribute("#consistency [data-verdict]", "data-verdict"), "verified");
  await shot(page, "checkpoint.png");
  // A checkpoint of the same size with another root hash is a fork: it fails.
  const parts = earlier.split("\n");
  const forged = [parts[0], String(Number(parts[1])), Buffer.alloc(32, 7).toString("base64"), ...parts.slice(3)].join("\n");
  await page.fill("#earlier", forged);
  await page.click("#main form button");
  await page.waitForFunction(() => document.querySelector("#consistency [data-verdict]")?.getAttribute("data-verdict") === "failed");
  await ctx.close();
});

test("phone width: no horizontal scrolling, even with a 1,024-char resource name", async () => {
  const { page, ctx } = await newPage(375, 740);
  for (const path of ["/", `/entries/${denyIndex}`, "/search?outcome=deny", "/verify", "/checkpoints"]) {
    await page.goto(log.url + path);
    await ready(page);
    const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(sw <= cw, `${path}: the page is ${sw}px wide in a ${cw}px window`);
    if (path.startsWith("/entries/")) {
      assert.equal(await page.getAttribute("[data-verdict]", "data-verdict"), "verified");
      await shot(page, "entry-phone.png");
    }
  }
  await ctx.close();
});

test("keyboard: the skip link and every navigation link are reachable with Tab", async () => {
  const { page, ctx } = await newPage();
  await page.goto(log.url + "/");
  await ready(page);
  const seen = [];
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press("Tab");
    seen.push(await page.evaluate(() => document.activeElement?.textContent?.trim() ?? ""));
  }
  for (const want of ["Skip to content", "Log", "Search", "Checkpoints", "Verify a file"]) assert.ok(seen.includes(want), `Tab never reached ${want}: ${seen}`);
  await ctx.close();
});

test("with read authentication the page asks for a token and nothing is read without it", async () => {
  const secret = randomBytes(16).toString("hex");
  const tokens = mkdtempSync(join(tmpdir(), "govlog-explorer-tokens-"));
  cleanups.push(() => rmSync(tokens, { recursive: true, force: true }));
  writeFileSync(join(tokens, "tokens"), `auditor ${createHash("sha256").update(secret).digest("hex")} read,decisions\n`, { mode: 0o600 });
  const authed = await startLog({ extra: ["--auth-tokens", join(tokens, "tokens"), "--auth-read"] });
  const r = await post(authed.url, "/v1/decisions", { id: "d-1", outcome: "deny", decided_at: now(), subject: "a", action: "b", policy: { id: "p" } }, { Authorization: `Bearer ${secret}` });
  assert.equal(r.status, 201);
  assert.equal((await fetch(authed.url + "/v1/log")).status, 401);
  const { page, ctx } = await newPage();
  await page.goto(`${authed.url}/entries/${r.body.index}`);
  await ready(page);
  assert.match(await page.textContent("main h1"), /needs a token/);
  assert.equal(await page.locator("[data-verdict]").count(), 0);
  await page.fill("#token", "wrong");
  await Promise.all([page.waitForEvent("load"), page.press("#token", "Enter")]);
  await ready(page);
  assert.match(await page.textContent("main"), /refused/);
  await page.fill("#token", secret);
  await Promise.all([page.waitForEvent("load"), page.press("#token", "Enter")]);
  await ready(page);
  assert.equal(await page.getAttribute("[data-verdict]", "data-verdict"), "verified");
  await ctx.close();
});
