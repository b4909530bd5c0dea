// The pages of the explorer. Everything from the log is shown as text
// (dom.ts); everything shown as verified was checked here (verify.ts).

import { base64, parseNoteKey, parseTLogProof, verifyBundle, verifyReceipt, verifyReceiptJSON, type NoteVerifier, type VerifiedBundle } from "../../../clients/ts/src/index.js";
import { APIError, NeedToken, getJSON, getText, q, status } from "./api.js";
import { badge, clip, code, facts, h, link, replace, type Child } from "./dom.js";
import {
  Checks,
  checkCheckpoint,
  checkConsistency,
  checkKeyContinuity,
  decodeB64,
  entryKind,
  errText,
  loadTrust,
  rememberCheckpoint,
  seenCheckpoint,
  verifyEntry,
  type CheckedCheckpoint,
  type Cosigner,
  type Trust,
} from "./verify.js";

type Obj = Record<string, any>;

// ---- shared pieces ----

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function title(text: string): void {
  document.title = `${text} · govlog explorer`;
}

function checkList(checks: Checks): HTMLElement {
  return h(
    "ul",
    { class: "checks" },
    checks.list.map((c) => h("li", { class: c.ok === true ? "ok" : c.ok === false ? "bad" : "na" }, c.what)),
  );
}

/** verdict is the box that says, first and loudly, whether the checks passed. */
function verdict(checks: Checks, okTitle: string, failTitle: string, ...body: Child[]): HTMLElement {
  const failed = checks.failed;
  return h(
    "section",
    { class: `verdict ${failed ? "bad" : "ok"}`, role: failed ? "alert" : "status", "data-verdict": failed ? "failed" : "verified", "aria-live": "polite" },
    h("h2", {}, failed ? `FAILED — ${failTitle}` : `Verified — ${okTitle}`),
    ...body,
    h("details", { open: true }, h("summary", {}, "What your browser checked"), checkList(checks)),
  );
}

function fmtTime(d: Date | undefined): string {
  return d ? d.toISOString().replace(".000Z", "Z") : "(no time)";
}

function witnessList(cosigners: Cosigner[]): Child {
  if (cosigners.length === 0) return "none";
  return h(
    "ul",
    {},
    cosigners.map((c) => h("li", {}, code(c.name), ` cosigned at ${fmtTime(c.time)}`)),
  );
}

/** A row of a list of entries: what search answers, or what an entry says. */
interface Row {
  index: number;
  kind: string;
  id: string;
  logged_at?: string;
  outcome?: string;
  subject?: string;
  action?: string;
  resource?: string;
  decision_id?: string;
  parent_id?: string; // only from an entry read here: search results do not carry it
  status?: string;
  violation?: string;
}

function rowFromEntry(index: number, e: Obj): Row {
  const kind = entryKind(e);
  const r: Row = { index, kind, id: "", logged_at: e.logged_at };
  if (kind === "decision") {
    const d = e.decision ?? {};
    Object.assign(r, { id: d.id, outcome: d.outcome, subject: d.subject, action: d.action, resource: d.resource, parent_id: d.parent_id });
  } else if (kind === "execution") {
    const x = e.execution ?? {};
    Object.assign(r, { id: x.id, decision_id: x.decision_id, status: x.status, violation: e.violation });
  } else if (kind === "revocation") {
    const v = e.revocation ?? {};
    Object.assign(r, { id: v.id, decision_id: v.decision_id });
  } else if (kind === "key") {
    r.id = e.key?.kid ?? "";
  }
  return r;
}

function parseLeaf(leaf: Uint8Array): Obj | undefined {
  try {
    const o = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(leaf));
    return o && typeof o === "object" && !Array.isArray(o) ? o : undefined;
  } catch {
    return undefined;
  }
}

function rowBadges(r: Row): Child[] {
  const out: Child[] = [];
  if (r.kind === "decision") out.push(badge(r.outcome === "allow" ? "allow" : r.outcome === "deny" ? "deny" : String(r.outcome), r.outcome === "allow" ? "allow" : "deny"));
  else if (r.kind === "execution") {
    if (r.violation) out.push(badge("violation", "violation"), " ");
    out.push(badge(String(r.status ?? "execution"), r.violation ? "other" : String(r.status ?? "other")));
  } else if (r.kind === "revocation") out.push(badge("revocation", "revocation"));
  else out.push(badge(r.kind, "key"));
  return out;
}

function rowSummary(r: Row): Child[] {
  if (r.kind === "decision")
    return [clip(String(r.subject ?? ""), 60), " → ", clip(String(r.action ?? ""), 60), r.resource ? [" on ", clip(r.resource, 80)] : null];
  if (r.kind === "execution")
    return [`${r.status ?? "report"} of decision `, code(String(r.decision_id ?? "")), r.violation ? [" — violation: ", h("strong", {}, r.violation)] : null];
  if (r.kind === "revocation") return ["revokes decision ", code(String(r.decision_id ?? ""))];
  if (r.kind === "key") return ["artifact signing key ", code(r.id)];
  return [];
}

function rowsTable(rows: Row[], caption: string): HTMLElement {
  return h(
    "table",
    { class: "results" },
    h("caption", { class: "muted" }, caption),
    h("thead", {}, h("tr", {}, h("th", { class: "num", scope: "col" }, "#"), h("th", { class: "badgecol", scope: "col" }, "what"), h("th", { class: "idcol", scope: "col" }, "id"), h("th", { scope: "col" }, "summary"), h("th", { class: "when", scope: "col" }, "logged at"))),
    h(
      "tbody",
      {},
      rows.map((r) =>
        h(
          "tr",
          { "data-kind": r.kind, "data-outcome": r.outcome ?? "", "data-violation": r.violation ?? "" },
          h("td", { class: "num" }, link(`/entries/${r.index}`, String(r.index))),
          h("td", { class: "badgecol" }, rowBadges(r)),
          h("td", {}, link(`/entries/${r.index}`, code(r.id))),
          h("td", {}, rowSummary(r)),
          h("td", { class: "when" }, r.logged_at ? h("time", { datetime: r.logged_at, title: r.logged_at }, r.logged_at.replace(/\.\d+Z$/, "Z")) : ""),
        ),
      ),
    ),
  );
}

async function recentEntries(size: number, count: number): Promise<Row[]> {
  if (size <= 0) return [];
  const start = Math.max(0, size - count);
  const ans = await getJSON<{ entries: { index: number; entry: string }[] }>(`/v1/entries${q({ start, count: size - start })}`);
  return ans.entries
    .map((e) => {
      const o = parseLeaf(decodeB64(e.entry));
      return o ? rowFromEntry(e.index, o) : { index: e.index, kind: "unreadable", id: "" };
    })
    .reverse();
}

// ---- the log at a glance ----

export async function overviewPage(main: HTMLElement): Promise<void> {
  title("The log");
  const trust = await loadTrust();
  const checks = new Checks();
  checkKeyContinuity(trust, checks);
  const cp = await checkCheckpoint(await getText("/v1/checkpoint"), trust, checks);
  await consistencyWithSeen(trust, cp, checks);
  const [healthz, readyz] = await Promise.all([status("/healthz"), status("/readyz")]);
  const size = cp.checkpoint ? Number(cp.checkpoint.size) : trust.info.tree_size;
  const rows = await recentEntries(size, 25);
  replace(
    main,
    h("h1", {}, "The log ", code(trust.info.origin)),
    verdict(
      checks,
      "the latest checkpoint is signed by this log's key",
      "the latest checkpoint did not verify",
      h("p", {}, "Size ", h("strong", { "data-size": String(size) }, String(size)), " entries. Whatever the log shows below must be consistent with this checkpoint."),
    ),
    h(
      "div",
      { class: "cards" },
      h("div", { class: "card" }, h("div", { class: "muted" }, "entries"), h("div", { class: "big" }, String(size))),
      h("div", { class: "card" }, h("div", { class: "muted" }, "health"), h("div", {}, badge(healthz === 200 ? "live" : "down", healthz === 200 ? "ok" : "bad"), " ", badge(readyz === 200 ? "ready" : "not ready", readyz === 200 ? "ok" : "warn"))),
      h("div", { class: "card" }, h("div", { class: "muted" }, "witnesses"), witnessList(cp.cosigners)),
    ),
    h("h2", {}, "Latest checkpoint"),
    facts([
      ["origin", code(trust.info.origin)],
      ["log key", code(trust.info.verifier_key)],
      ["size", String(size)],
      ["root hash", cp.checkpoint ? code(base64(cp.checkpoint.rootHash)) : "(did not verify)"],
      ["witness policy", trust.info.witness_policy ? h("pre", {}, trust.info.witness_policy) : "none"],
      ["artifact lifetime", `${trust.info.artifact_ttl_seconds} s`],
    ]),
    h("p", {}, link("/checkpoints", "The checkpoint in full, and its consistency with an earlier one")),
    h("h2", {}, "Recent entries"),
    rows.length ? rowsTable(rows, "The latest entries as the log lists them; open one to verify it in your browser.") : h("p", { class: "muted" }, "The log is empty."),
  );
}

async function consistencyWithSeen(trust: Trust, cp: CheckedCheckpoint, checks: Checks): Promise<void> {
  if (!cp.checkpoint) return;
  const seen = seenCheckpoint(trust.info.origin);
  if (seen && seen !== cp.text) {
    if (!(await checkConsistency(seen, cp.text, trust, checks))) return;
  } else if (!seen) {
    checks.skip("this browser has not seen a checkpoint of this log before: remembered this one, to check the next against it");
  } else {
    checks.pass("same checkpoint as this browser saw last time");
  }
  rememberCheckpoint(trust.info.origin, cp.text);
}

// ---- search ----

const FILTERS: [string, string, string[]?][] = [
  ["kind", "Kind", ["", "decision", "execution", "revocation", "key"]],
  ["outcome", "Outcome", ["", "allow", "deny"]],
  ["subject", "Subject"],
  ["action", "Action"],
  ["resource", "Resource"],
  ["policy_id", "Policy"],
  ["decision_id", "Decision id (its executions, revocation)"],
  ["parent_id", "Parent decision id (its children)"],
  ["violation", "Violation (any, or a code)"],
  ["from", "Logged from (RFC 3339)"],
  ["to", "Logged before (RFC 3339)"],
];

export async function searchPage(main: HTMLElement, params: URLSearchParams): Promise<void> {
  title("Search");
  const form = h("form", { class: "filters", method: "get", action: "/search", role: "search" });
  for (const [name, label, options] of FILTERS) {
    const id = `f-${name}`;
    const value = params.get(name) ?? "";
    const input = options
      ? h("select", { id, name }, options.map((o) => h("option", { value: o, selected: o === value }, o || "any")))
      : h("input", { id, name, type: "text", value, autocomplete: "off", spellcheck: "false" });
    form.append(h("div", {}, h("label", { for: id }, label), input));
  }
  form.append(h("div", {}, h("button", { type: "submit" }, "Search")));
  const out = h("div", { id: "results", "aria-live": "polite" });
  replace(main, h("h1", {}, "Search"), form, out);
  const filters: Record<string, string> = {};
  for (const [name] of FILTERS) {
    const v = params.get(name);
    if (v) filters[name] = v;
  }
  const after = params.get("after") ?? undefined;
  if (Object.keys(filters).length === 0 && !after) {
    replace(out, h("p", { class: "muted" }, "Choose one or more filters."));
    return;
  }
  try {
    const ans = await getJSON<{ results: Row[]; next?: string }>(`/v1/search${q({ ...filters, after, limit: 100 })}`);
    const nextHref = ans.next ? `/search${q({ ...filters, after: ans.next })}` : undefined;
    const exportStatus = h("span", { class: "muted", "aria-live": "polite" });
    const exportButton = h(
      "button",
      {
        type: "button",
        class: "secondary",
        id: "export",
        onclick: async () => {
          // Fetched with the read token, then saved: a plain link would not carry it.
          replace(exportStatus, "Exporting…");
          try {
            const text = await getText(`/v1/export${q(filters)}`);
            const a = h("a", { href: URL.createObjectURL(new Blob([text], { type: "application/json" })), download: "evidence.json" });
            document.body.append(a);
            a.click();
            a.remove();
            replace(exportStatus, "Saved evidence.json: verify it offline with ", code("govlog verify evidence.json"), ", or drop it on ", link("/verify", "Verify a file"), ".");
          } catch (e) {
            replace(exportStatus, h("span", { class: "error" }, errText(e)));
          }
        },
      },
      "Export these results as an evidence bundle",
    );
    replace(
      out,
      ans.results.length ? rowsTable(ans.results, `${plural(ans.results.length, "entry", "entries")}${ans.next ? " (more on the next page)" : ""}. Open one to verify it in your browser.`) : h("p", {}, "No entry matches."),
      nextHref ? h("p", {}, link(nextHref, "Next page →")) : null,
      ans.results.length ? h("p", { class: "row" }, exportButton, exportStatus) : null,
    );
  } catch (e) {
    if (e instanceof APIError && e.status === 404 && e.code === "not_found") {
      // A server without /v1/search: look through the latest entries here.
      const rows = (await recentEntries(await latestSize(), 1000)).filter((r) => matches(r, filters));
      replace(
        out,
        h("p", { class: "muted" }, "This server has no search endpoint: these are the matches among its latest 1,000 entries, filtered in your browser."),
        rows.length ? rowsTable(rows, plural(rows.length, "entry", "entries")) : h("p", {}, "No entry matches."),
      );
      return;
    }
    if (e instanceof APIError && e.status === 400) {
      replace(out, h("p", { class: "error", role: "alert" }, e.message));
      return;
    }
    throw e;
  }
}

async function latestSize(): Promise<number> {
  return (await getJSON<{ tree_size: number }>("/v1/log")).tree_size;
}

function matches(r: Row, f: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(f)) {
    if (k === "from" && !(r.logged_at && r.logged_at >= v)) return false;
    if (k === "to" && !(r.logged_at && r.logged_at < v)) return false;
    if (k === "violation" && !(v === "any" ? !!r.violation : r.violation === v)) return false;
    if (k === "policy_id") continue; // not in a row; shown unfiltered
    if (["kind", "outcome", "subject", "action", "resource", "decision_id", "parent_id"].includes(k) && (r as any)[k] !== v) return false;
  }
  return true;
}

// ---- one entry: the public proof page ----

export async function entryPage(main: HTMLElement, indexText: string): Promise<void> {
  if (!/^(0|[1-9][0-9]{0,18})$/.test(indexText)) {
    replace(main, h("h1", {}, "Not an entry"), h("p", { class: "error" }, "An entry is named by its index, a decimal number."));
    return;
  }
  const index = BigInt(indexText);
  title(`Entry ${index}`);
  replace(main, h("h1", {}, `Entry ${index}`), h("section", { class: "verdict pending", "data-verdict": "pending" }, h("h2", {}, "Verifying in your browser…")));
  const v = await verifyEntry(index);
  const e = v.leaf ? parseLeaf(v.leaf) : undefined;
  const kind = e ? entryKind(e) : "unknown";
  const cp = v.checkpoint?.checkpoint;
  const keyText = v.trust ? v.trust.info.verifier_key : "(unknown)";
  const witnesses = v.checkpoint?.cosigners ?? [];

  let box: HTMLElement;
  if (v.pending) {
    box = h(
      "section",
      { class: "verdict pending", "data-verdict": "pending" },
      h("h2", {}, "Not yet covered by a checkpoint"),
      h("p", {}, "The latest checkpoint of this log does not include this entry yet. Reload in a moment."),
      checkList(v.checks),
    );
  } else {
    const stmt: Child[] = [];
    if (e && !v.checks.failed) {
      stmt.push(h("p", { class: "statement" }, plainWords(e, kind)));
      stmt.push(
        h(
          "p",
          { class: "statement" },
          `This log could not have hidden or changed it since: it is entry ${index} of the log's Merkle tree of ${cp?.size ?? "?"} entries, whose checkpoint was verified in your browser against the log key `,
          code(keyText),
          witnesses.length ? [" and the witnesses ", witnesses.map((w, i) => [i ? ", " : "", code(w.name), ` (cosigned at ${fmtTime(w.time)})`])] : " (no witness cosigned it)",
          ".",
        ),
      );
    } else {
      stmt.push(
        h(
          "p",
          { class: "statement" },
          "Your browser could not verify this entry against the log's signed checkpoint. Do not rely on what this page shows about it: the log, or something between you and the log, served data that does not match its own signed tree.",
        ),
      );
    }
    box = verdict(v.checks, "this entry is in the log", "this entry did not verify", ...stmt);
  }

  const parts: Child[] = [h("h1", {}, `Entry ${index}`), box];
  if (e) {
    parts.push(h("h2", {}, kind === "decision" ? "The decision" : kind === "execution" ? "The execution report" : kind === "revocation" ? "The revocation" : "The entry"));
    parts.push(entryFacts(e, kind, v.checks.failed));
    parts.push(h("details", {}, h("summary", {}, "The entry's bytes (RFC 8785 canonical JSON)"), h("pre", {}, new TextDecoder().decode(v.leaf))));
    if (v.leafHash) parts.push(h("p", { class: "muted" }, "Entry hash: ", code(base64(v.leafHash))));
  }
  replace(main, ...parts);
  if (e && !v.pending) await entryContext(main, e, kind, v.trust);
}

function plainWords(e: Obj, kind: string): Child[] {
  if (kind === "decision") {
    const d = e.decision as Obj;
    const pol = d.policy?.id ? [" by policy ", code(String(d.policy.id)), d.policy.version ? ` (version ${d.policy.version})` : ""] : "";
    return [
      "This action was ",
      h("strong", { class: d.outcome === "deny" ? "error" : "" }, d.outcome === "deny" ? "denied" : "allowed"),
      ` at ${d.decided_at}`,
      pol,
      ": ",
      clip(String(d.subject)),
      " asked to ",
      clip(String(d.action)),
      d.resource ? [" on ", clip(String(d.resource))] : "",
      `. The log recorded it at ${e.logged_at}.`,
    ];
  }
  if (kind === "execution") {
    const x = e.execution as Obj;
    return [
      "A runtime reported ",
      h("strong", {}, String(x.status)),
      ` at ${x.at} for decision `,
      code(String(x.decision_id)),
      e.violation ? [". The log recorded it as a violation: ", h("strong", { class: "error" }, String(e.violation))] : "",
      `. The log recorded it at ${e.logged_at}.`,
    ];
  }
  if (kind === "revocation") {
    const r = e.revocation as Obj;
    return ["The authorization of decision ", code(String(r.decision_id)), ` was revoked at ${r.revoked_at}`, r.reason ? [": ", String(r.reason)] : "", `. The log recorded it at ${e.logged_at}.`];
  }
  if (kind === "key") return ["The artifact signing key ", code(String(e.key?.kid)), ` was logged at ${e.logged_at}.`];
  return [`An entry logged at ${String(e.logged_at)}.`];
}

function entryFacts(e: Obj, kind: string, failed: boolean): HTMLElement {
  const rows: [string, Child][] = [];
  if (failed) rows.push(["warning", h("span", { class: "error" }, "NOT VERIFIED: shown as the server sent it")]);
  rows.push(["logged at", String(e.logged_at ?? "")], ["submitter", code(String(e.submitter ?? ""))]);
  if (kind === "decision") {
    const d = e.decision as Obj;
    rows.push(
      ["id", code(String(d.id))],
      ["outcome", badge(String(d.outcome), d.outcome === "allow" ? "allow" : "deny")],
      ["decided at", String(d.decided_at)],
      ["subject", code(String(d.subject))],
      ["action", code(String(d.action))],
      ["resource", d.resource ? code(String(d.resource)) : ""],
      ["policy", d.policy ? [code(String(d.policy.id)), d.policy.version ? ` version ${d.policy.version}` : "", d.policy.digest ? [" ", code(String(d.policy.digest))] : ""] : ""],
      ["input digest", d.input_digest ? code(String(d.input_digest)) : ""],
      ["reasons", Array.isArray(d.reasons) && d.reasons.length ? h("ul", {}, d.reasons.map((r: unknown) => h("li", {}, String(r)))) : ""],
      ["parent", d.parent_id ? h("span", { id: "parent" }, code(String(d.parent_id))) : ""],
      ["authorized until", e.authorized_until ? String(e.authorized_until) : ""],
      ["max executions", d.max_executions !== undefined ? String(d.max_executions) : ""],
      ["executor", d.executor ? code(String(d.executor)) : ""],
      ["sequence", d.sequence !== undefined ? String(d.sequence) : ""],
      ["context", d.context ? h("pre", {}, JSON.stringify(d.context, null, 2)) : ""],
    );
  } else if (kind === "execution") {
    const x = e.execution as Obj;
    rows.push(
      ["id", code(String(x.id))],
      ["decision", h("span", { id: "parent" }, code(String(x.decision_id)))],
      ["status", badge(String(x.status), String(x.status))],
      ["violation", e.violation ? badge(String(e.violation), "violation") : ""],
      ["at", String(x.at)],
      ["runtime", x.runtime ? code(String(x.runtime)) : ""],
      ["claim", x.claim_id ? code(String(x.claim_id)) : ""],
      ["result digest", x.result_digest ? code(String(x.result_digest)) : ""],
      ["artifact digest", e.artifact_digest ? code(String(e.artifact_digest)) : ""],
      ["context", x.context ? h("pre", {}, JSON.stringify(x.context, null, 2)) : ""],
    );
  } else if (kind === "revocation") {
    const r = e.revocation as Obj;
    rows.push(["id", code(String(r.id))], ["decision", h("span", { id: "parent" }, code(String(r.decision_id)))], ["revoked at", String(r.revoked_at)], ["reason", r.reason ? String(r.reason) : ""]);
  } else if (kind === "key") {
    rows.push(["kid", code(String(e.key?.kid))], ["public key", h("pre", {}, JSON.stringify(e.key?.jwk ?? {}, null, 2))]);
  }
  return facts(rows);
}

/** entryContext adds what other endpoints say about the entry: lineage, executions, authorization status, receipt. */
async function entryContext(main: HTMLElement, e: Obj, kind: string, trust: Trust | undefined): Promise<void> {
  const section = h("section", { id: "related", "aria-label": "Related entries" });
  main.append(section);
  const decisionId: string | undefined = kind === "decision" ? e.decision?.id : kind === "execution" ? e.execution?.decision_id : kind === "revocation" ? e.revocation?.decision_id : undefined;
  const parentId: string | undefined = kind === "decision" ? e.decision?.parent_id : decisionId;
  // Lineage: the parent (or the decision this report or revocation is about).
  if (parentId) {
    const el = document.getElementById("parent");
    try {
      const r = await getJSON<{ index: number }>(`/v1/decisions/${encodeURIComponent(parentId)}`);
      if (el) el.append(" ", link(`/entries/${r.index}`, `entry ${r.index}`));
    } catch (err) {
      if (el) el.append(" ", h("span", { class: "muted" }, `(${errText(err)})`));
    }
  }
  // Lineage: the children, decisions that name this one as their parent.
  if (kind === "decision" && decisionId) {
    section.append(h("h2", {}, "Children"));
    const children = h("div", { id: "children" });
    section.append(children);
    if (e.decision?.outcome === "deny") {
      children.append(h("p", { class: "muted" }, "Lineage stops at a deny: no decision can name this one as its parent."));
    } else {
      try {
        const ans = await getJSON<{ results: Row[]; next?: string }>(`/v1/search${q({ parent_id: decisionId, limit: 100 })}`);
        children.append(
          ans.results.length
            ? rowsTable(ans.results, `Decisions whose parent is this one: ${plural(ans.results.length, "decision", "decisions")}${ans.next ? ", and more" : ""}`)
            : h("p", { class: "muted" }, "No decision names this one as its parent."),
        );
        if (ans.next) children.append(h("p", {}, link(`/search${q({ parent_id: decisionId, after: ans.next })}`, "More children →")));
      } catch (err) {
        children.append(h("p", { class: "muted" }, `Not available from this server (${errText(err)}).`));
      }
    }
  }
  if (kind === "decision" && decisionId) {
    section.append(h("h2", {}, "Executions and revocation"));
    try {
      const ans = await getJSON<{ results: Row[] }>(`/v1/search${q({ decision_id: decisionId, limit: 1000 })}`);
      section.append(ans.results.length ? rowsTable(ans.results, "Entries that name this decision") : h("p", { class: "muted" }, "No execution report or revocation names this decision."));
    } catch (err) {
      section.append(h("p", { class: "muted" }, `Not available from this server (${errText(err)}).`));
    }
    if (e.decision?.outcome === "allow") {
      section.append(h("h2", {}, "Authorization status"));
      try {
        const a = await getJSON<Obj>(`/v1/authorizations/${encodeURIComponent(decisionId)}`);
        section.append(
          facts([
            ["status", badge(String(a.status), String(a.status))],
            ["authorized until", String(a.authorized_until ?? "")],
            ["uses", `${a.uses ?? "?"} of ${a.max_executions ?? "?"}`],
          ]),
        );
      } catch (err) {
        section.append(h("p", { class: "muted" }, `Not available from this server (${errText(err)}).`));
      }
    }
  }
  // The receipt: a tlog-proof anyone can keep and verify offline.
  const id: string | undefined = kind === "decision" ? e.decision?.id : kind === "execution" ? e.execution?.id : kind === "revocation" ? e.revocation?.id : undefined;
  if (id && trust) {
    section.append(h("h2", {}, "Receipt"));
    try {
      const r = await getJSON<Obj>(`/v1/${kind === "decision" ? "decisions" : kind === "execution" ? "executions" : "revocations"}/${encodeURIComponent(id)}`);
      const proof = String(r.tlog_proof);
      const checks = new Checks();
      try {
        const vr = await verifyReceipt(proof, trust.key);
        checks.pass(`the receipt verifies: entry ${vr.index} in the checkpoint of size ${vr.checkpoint.size}, signed by ${trust.key.name}`);
      } catch (err) {
        checks.fail(`the receipt: ${errText(err)}`);
      }
      const url = URL.createObjectURL(new Blob([proof], { type: "text/plain" }));
      section.append(
        h("div", { id: "receipt-checks" }, checkList(checks)),
        h("p", {}, h("a", { href: url, download: `${id}.tlog-proof` }, `Download ${id}.tlog-proof`), " — verify it offline with ", code("govlog verify"), ", or drop it on ", link("/verify", "Verify a file"), "."),
        h("details", {}, h("summary", {}, "The receipt (c2sp.org/tlog-proof@v1)"), h("pre", {}, proof)),
      );
    } catch (err) {
      section.append(h("p", { class: "muted" }, `Not available (${errText(err)}).`));
    }
  }
}

// ---- checkpoints ----

export async function checkpointPage(main: HTMLElement): Promise<void> {
  title("Checkpoint");
  const trust = await loadTrust();
  const checks = new Checks();
  checkKeyContinuity(trust, checks);
  const text = await getText("/v1/checkpoint");
  const cp = await checkCheckpoint(text, trust, checks);
  await consistencyWithSeen(trust, cp, checks);
  const area = h("textarea", { id: "earlier", name: "earlier", spellcheck: "false", placeholder: `${trust.info.origin}\n123\n…base64 root…\n\n— ${trust.info.origin} …` });
  const result = h("div", { id: "consistency", "aria-live": "polite" });
  const form = h(
    "form",
    {
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        const c = new Checks();
        const older = area.value.replace(/\r\n/g, "\n");
        await checkConsistency(older.endsWith("\n") ? older : older + "\n", text, trust, c);
        replace(result, verdict(c, "the latest checkpoint extends the earlier one", "the checkpoints are not consistent"));
      },
    },
    h("label", { for: "earlier" }, "An earlier checkpoint of this log (its signed note, as text)"),
    area,
    h("p", {}, h("button", { type: "submit" }, "Check consistency")),
  );
  replace(
    main,
    h("h1", {}, "Checkpoint"),
    verdict(checks, `size ${cp.checkpoint?.size ?? "?"}, signed by the log key`, "the checkpoint did not verify"),
    facts([
      ["origin", code(trust.info.origin)],
      ["size", cp.checkpoint ? String(cp.checkpoint.size) : "?"],
      ["root hash", cp.checkpoint ? code(base64(cp.checkpoint.rootHash)) : "?"],
      ["log key", code(trust.info.verifier_key)],
      ["witnesses", witnessList(cp.cosigners)],
    ]),
    h("h2", {}, "The signed note"),
    h("pre", { id: "checkpoint-text" }, text),
    h("h2", {}, "Consistency with an earlier checkpoint"),
    h("p", {}, "Paste a checkpoint you kept (from a receipt, an earlier visit, a witness): your browser fetches the consistency proof and checks that the latest tree extends it, so nothing in it was changed or removed."),
    form,
    result,
  );
}

// ---- drop zone ----

export async function verifyPage(main: HTMLElement): Promise<void> {
  title("Verify a file");
  let trust: Trust | undefined;
  try {
    trust = await loadTrust();
  } catch (e) {
    if (e instanceof NeedToken) throw e;
    trust = undefined; // the person gives the key
  }
  const keyInput = h("input", { id: "logkey", name: "logkey", type: "text", value: trust?.info.verifier_key ?? "", spellcheck: "false", autocomplete: "off" });
  const fileInput = h("input", { id: "file", name: "file", type: "file", accept: ".tlog-proof,.json,.txt,text/plain,application/json" });
  const result = h("div", { id: "result", "aria-live": "polite" });
  const drop = h(
    "div",
    { class: "drop", id: "drop" },
    h("p", {}, "Drop a ", code(".tlog-proof"), " receipt or an evidence bundle (", code(".json"), ") here, or choose it:"),
    h("label", { for: "file" }, "File to verify"),
    fileInput,
  );
  const run = async (file: File): Promise<void> => {
    replace(result, h("p", {}, `Verifying ${file.name}…`));
    const bytes = new Uint8Array(await file.arrayBuffer());
    replace(result, await verifyFile(file.name, bytes, keyInput.value.trim(), trust));
    result.querySelector<HTMLElement>("h2")?.setAttribute("tabindex", "-1");
    result.querySelector<HTMLElement>("h2")?.focus();
  };
  fileInput.addEventListener("change", () => {
    const f = fileInput.files?.[0];
    if (f) void run(f);
  });
  drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    const f = ev.dataTransfer?.files?.[0];
    if (f) void run(f);
  });
  replace(
    main,
    h("h1", {}, "Verify a file"),
    h("p", {}, "The file is read and verified in this page; it is not sent anywhere."),
    h("div", {}, h("label", { for: "logkey" }, "Trusted log key (note verifier key)"), keyInput),
    trust ? h("p", { class: "muted" }, "Filled in from this log (/v1/log). To check a file against a key you hold, paste that key instead.") : h("p", { class: "muted" }, "Paste the log's verifier key."),
    drop,
    result,
  );
}

async function verifyFile(name: string, bytes: Uint8Array, keyText: string, trust: Trust | undefined): Promise<HTMLElement> {
  const checks = new Checks();
  let key: NoteVerifier;
  try {
    key = parseNoteKey(keyText);
    checks.pass(`trusted log key ${key.name}`);
  } catch (e) {
    checks.fail(`the log key: ${errText(e)}`);
    return verdict(checks, "", `${name} could not be checked`);
  }
  const policy = trust && trust.info.verifier_key === keyText ? trust.policy : undefined;
  const text = new TextDecoder().decode(bytes);
  if (text.startsWith("c2sp.org/tlog-proof@v1\n")) return verifyProofFile(name, bytes, key, policy, checks);
  let json: Obj | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (json && json.format === "govlog-evidence/v1") return verifyEvidenceBundle(name, bytes, json, key, policy, checks);
  if (json && typeof json.tlog_proof === "string") {
    try {
      const v = await verifyReceiptJSON(bytes, key);
      checks.pass(`JSON receipt: entry ${v.index} is in the checkpoint of size ${v.checkpoint.size} (signature, inclusion proof, entry hash and entry checked)`);
      const e = parseLeaf(v.leaf);
      return verdict(checks, `${name}: entry ${v.index} is in the log`, `${name} did not verify`, e ? h("p", { class: "statement" }, plainWords(e, entryKind(e))) : null);
    } catch (e) {
      checks.fail(`JSON receipt: ${errText(e)}`);
      return verdict(checks, "", `${name} did not verify`);
    }
  }
  checks.fail("the file is neither a tlog-proof, nor a JSON receipt, nor an evidence bundle (govlog-evidence/v1)");
  return verdict(checks, "", `${name} is not a file this page knows`);
}

async function verifyProofFile(name: string, bytes: Uint8Array, key: NoteVerifier, policy: Trust["policy"], checks: Checks): Promise<HTMLElement> {
  try {
    const p = parseTLogProof(bytes);
    checks.pass(`a c2sp.org/tlog-proof@v1 for entry ${p.index}`);
    const v = await verifyReceipt(bytes, key);
    checks.pass(`checkpoint of size ${v.checkpoint.size} signed by ${key.name} (Ed25519)`);
    checks.pass(`entry hash computed here: ${base64(v.leafHash)}`);
    checks.pass(`inclusion proof (${v.inclusionProof.length} hashes) against root ${base64(v.checkpoint.rootHash)}`);
    checks.pass("the entry is a valid govlog entry");
    if (policy) {
      if (await policy.satisfied(v.checkpoint.note)) checks.pass(`witness policy satisfied (${(await policy.cosigners(v.checkpoint.note)).map((w) => w.name).join(", ") || "none needed"})`);
      else checks.fail("witness policy of this log not satisfied by the receipt's checkpoint");
    }
    const e = parseLeaf(v.leaf);
    return verdict(
      checks,
      `${name}: entry ${v.index} is in the log`,
      `${name} did not verify`,
      e ? h("p", { class: "statement" }, plainWords(e, entryKind(e))) : null,
      e ? entryFacts(e, entryKind(e), false) : null,
    );
  } catch (e) {
    checks.fail(`${name}: ${errText(e)}`);
    return verdict(checks, "", `${name} did not verify`);
  }
}

async function verifyEvidenceBundle(name: string, bytes: Uint8Array, b: Obj, key: NoteVerifier, policy: Trust["policy"], checks: Checks): Promise<HTMLElement> {
  // The checks are clients/ts's verifyBundle: the same as Go's
  // verifier.Bundle and the Python package, on the shared vectors.
  let vb: VerifiedBundle;
  try {
    vb = await verifyBundle(bytes, key, policy);
  } catch (e) {
    checks.fail(`evidence bundle: ${errText(e)}`);
    return verdict(checks, "", `${name} did not verify`);
  }
  checks.pass(`the bundle's checkpoint (size ${vb.checkpoint.size}, root ${base64(vb.checkpoint.rootHash)}) is signed by ${key.name}`);
  if (policy) checks.pass("the checkpoint satisfies this log's witness policy");
  checks.pass(`${vb.entries.length} entries: each entry hash computed here, each inclusion proof leads to that checkpoint's root, each entry valid`);
  checks.pass(`${vb.keys.length} artifact keys, each with its receipt`);
  const rows: Row[] = [];
  const tally = new Map<string, number>();
  for (const it of Array.isArray(b.entries) ? (b.entries as Obj[]) : []) {
    const o = parseLeaf(decodeB64(String(it.entry)));
    if (!o) continue;
    const r = rowFromEntry(Number(it.index), o);
    rows.push(r);
    const label = r.kind === "decision" ? String(r.outcome) : r.kind === "execution" ? (r.violation ? `violation (${r.violation})` : String(r.status)) : r.kind;
    tally.set(label, (tally.get(label) ?? 0) + 1);
  }
  const query = Object.entries(vb.query).map(([k, v]) => `${k}=${v}`).join(", ");
  return verdict(
    checks,
    `${name}: ${vb.entries.length} entries of ${vb.origin}`,
    `${name} did not verify`,
    h("p", {}, query ? `The query: ${query}.` : "The query: every entry."),
    h("ul", {}, [...tally].map(([k, n]) => h("li", {}, `${n} × ${k}`))),
    rows.length ? rowsTable(rows.slice(0, 500), rows.length > 500 ? `The first 500 of ${rows.length} entries` : plural(rows.length, "entry", "entries")) : null,
  );
}
