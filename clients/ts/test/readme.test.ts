// The README's script that checks an artifact before calling a tool, run
// as written: with a log key file, a GET /v1/keys answer and a fresh
// artifact signed with the test artifact key (whose key entry the
// key-artifacts vectors log at index 0).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, webcrypto } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { testdata } from "./helpers.js";

const pkg = fileURLToPath(new URL("../../", import.meta.url));

function script(): string {
  const readme = readFileSync(join(pkg, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Check an artifact before calling a tool"));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(m, "the README has the script");
  assert.ok(m[1]!.trimEnd().split("\n").length <= 15, "the script is at most 15 lines");
  return m[1]!;
}

/** freshArtifact is the "good" vector's artifact (deploy, by agent-7), reissued now for svc/payments: iat = nbf = now, exp = now + 300. */
async function freshArtifact(): Promise<string> {
  const cases = JSON.parse(readFileSync(`${testdata}/verify/key-artifacts.json`, "utf8")).cases as { name: string; token: string }[];
  const good = cases.find((c) => c.name === "good")!;
  const [header, payload] = good.token.split(".") as [string, string];
  const now = Math.floor(Date.now() / 1000);
  const claims = Buffer.from(payload, "base64url")
    .toString()
    .replace(/"exp":\d+/, `"exp":${now + 300}`)
    .replace(/"iat":\d+/, `"iat":${now}`)
    .replace(/"nbf":\d+/, `"nbf":${now},"resource":"svc/payments"`);
  const seed = createHash("sha256").update("govlog test key: artifact-1").digest();
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
  const key = await webcrypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
  const input = `${header}.${Buffer.from(claims).toString("base64url")}`;
  const sig = Buffer.from(await webcrypto.subtle.sign("Ed25519", key, new TextEncoder().encode(input)));
  return `${input}.${sig.toString("base64url")}`;
}

test("the README's artifact check runs, and refuses what it must", async () => {
  const dir = mkdtempSync(join(tmpdir(), "govlog-readme-"));
  const cases = JSON.parse(readFileSync(`${testdata}/verify/key-artifacts.json`, "utf8")).cases as { name: string; key_receipt: string }[];
  const receipt = JSON.parse(cases.find((c) => c.name === "a JSON key receipt")!.key_receipt);
  writeFileSync(join(dir, "keys.json"), JSON.stringify({ keys: [{ kid: "test-artifact-1", jwk: {}, index: 0, receipt }] }));
  writeFileSync(join(dir, "log.vkey"), readFileSync(`${testdata}/keys/log.vkey`));
  // The script runs from the package, so that "govlog" is this package.
  const file = join(pkg, "build", "test", "readme-check.mjs");
  writeFileSync(file, `process.chdir(${JSON.stringify(dir)});\nconst callTool = async (...a) => console.log("called", ...a);\n` + script());
  const token = await freshArtifact();
  const out = execFileSync(process.execPath, [file], { env: { ...process.env, GOVLOG_ARTIFACT: token }, encoding: "utf8" });
  assert.equal(out.trim(), "called deploy svc/payments");
  // A signature changed (its first character, which carries six bits of
  // the signature and never padding): the script throws before the tool is
  // called.
  const dot = token.lastIndexOf(".") + 1;
  const bad = token.slice(0, dot) + (token[dot] === "A" ? "B" : "A") + token.slice(dot + 1);
  assert.notEqual(bad, token);
  assert.throws(() => execFileSync(process.execPath, [file], { env: { ...process.env, GOVLOG_ARTIFACT: bad }, stdio: "pipe" }));
});
