// Witness policies: the text format of
// github.com/transparency-dev/formats/witness (Sigsum's policy format with
// cosignature/v1 keys), with the stricter rules of the Go package verifier
// (verifier.ParsePolicy).

import { asBytes, fromUTF8, type Input } from "./bytes.js";
import { fail, VerificationError } from "./errors.js";
import { isSpace, openNote, parseCosignatureKey, type NoteVerifier } from "./note.js";
import { MAX_CHECKPOINT_BYTES } from "./checkpoint.js";

/** MAX_POLICY_BYTES bounds a witness policy. */
export const MAX_POLICY_BYTES = 64 << 10;

/** A witness of a policy. */
export interface PolicyWitness {
  /** name is the witness's name in the policy. */
  readonly name: string;
  /** key is its cosignature/v1 verifier key. */
  readonly key: NoteVerifier;
  /** url is where it accepts checkpoints: the policy's URL with /add-checkpoint appended. */
  readonly url: string;
}

type Component = { kind: "witness"; witness: PolicyWitness } | { kind: "group"; n: number; members: Component[] };

const KEYWORDS = new Set(["witness", "group", "any", "all", "none", "quorum", "log"]);

/** fields splits a line at Unicode spaces, as Go's strings.Fields. */
function fields(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (const c of line) {
    if (isSpace(c)) {
      if (cur) out.push(cur);
      cur = "";
    } else cur += c;
  }
  if (cur) out.push(cur);
  return out;
}

/** A parsed witness policy. */
export class Policy {
  private constructor(
    /** text is the policy as parsed. */
    readonly text: string,
    private readonly quorum: Component,
    /** witnesses are every witness the policy names, once each. */
    readonly witnesses: readonly PolicyWitness[],
  ) {}

  /**
   * parse reads a witness policy: lines of "witness NAME VKEY URL", "group
   * NAME N|any|all MEMBER…", "quorum NAME|none" and "log …" (ignored), "#"
   * comments. It is as strict as the Go verifier.ParsePolicy: names are
   * defined before use, once, and are not keywords; witness keys are
   * cosignature/v1 keys (type 0x04) whose written key ID is their own, no two
   * alike; a group needs 1 to all of its members (a number is 1 to 255), each
   * named once; exactly one quorum line. It throws `malformed`.
   */
  static parse(input: Input): Policy {
    const bytes = asBytes(input);
    if (bytes.length > MAX_POLICY_BYTES) fail("malformed", `the witness policy is ${bytes.length} bytes, the limit is ${MAX_POLICY_BYTES}`);
    const text = fromUTF8(bytes) ?? new TextDecoder().decode(bytes);
    const components = new Map<string, Component>();
    const keys = new Set<string>();
    const witnesses: PolicyWitness[] = [];
    let quorum: string | undefined;
    let quorums = 0;
    const bad = (msg: string): never => fail("malformed", `witness policy: ${msg}`);
    for (let line of text.split("\n")) {
      const hash = line.indexOf("#");
      if (hash >= 0) line = line.slice(0, hash);
      const f = fields(line);
      if (f.length === 0) continue;
      switch (f[0]) {
        case "log":
          break;
        case "witness": {
          if (f.length !== 4) bad(`invalid witness definition: ${JSON.stringify(line)}`);
          const [, name, vkey, url] = f as [string, string, string, string];
          if (KEYWORDS.has(name)) bad(`invalid witness name ${JSON.stringify(name)}`);
          if (components.has(name)) bad(`duplicate component name ${JSON.stringify(name)}`);
          checkURL(url) || bad(`invalid witness URL ${JSON.stringify(url)}`);
          let key: NoteVerifier;
          try {
            key = parseCosignatureKey(vkey);
          } catch (e) {
            bad(`witness ${JSON.stringify(name)}: ${(e as Error).message}`);
          }
          const id = `${key!.name}+${key!.keyId}`;
          if (keys.has(id)) bad(`two witnesses have the key ${vkey}`);
          keys.add(id);
          const w: PolicyWitness = { name, key: key!, url: joinURL(url) };
          witnesses.push(w);
          components.set(name, { kind: "witness", witness: w });
          break;
        }
        case "group": {
          if (f.length < 3) bad(`invalid group definition: ${JSON.stringify(line)}`);
          const [, name, threshold, ...members] = f as [string, string, string, ...string[]];
          if (KEYWORDS.has(name)) bad(`invalid group name ${JSON.stringify(name)}`);
          if (components.has(name)) bad(`duplicate component name ${JSON.stringify(name)}`);
          if (members.length === 0) bad(`group ${JSON.stringify(name)} has no members`);
          let n: number;
          if (threshold === "any") n = 1;
          else if (threshold === "all") n = members.length;
          else if (/^[0-9]+$/.test(threshold) && Number(threshold) <= 255) n = Number(threshold);
          else bad(`invalid threshold ${JSON.stringify(threshold)} for group ${JSON.stringify(name)}`);
          if (n! === 0) bad(`group ${JSON.stringify(name)} needs none of its members: use "quorum none" to require no cosignature`);
          if (n! > members.length) bad(`group with ${members.length} members cannot have threshold ${n!}`);
          const children: Component[] = [];
          members.forEach((m, i) => {
            if (KEYWORDS.has(m)) bad(`invalid component name ${JSON.stringify(m)}`);
            if (members.indexOf(m) !== i) bad(`group ${JSON.stringify(name)} names ${JSON.stringify(m)} twice`);
            const c = components.get(m);
            if (!c) bad(`unknown component ${JSON.stringify(m)} in group definition`);
            children.push(c!);
          });
          components.set(name, { kind: "group", n: n!, members: children });
          break;
        }
        case "quorum":
          if (f.length !== 2) bad(`invalid quorum definition: ${JSON.stringify(line)}`);
          if (++quorums > 1) bad("more than one quorum line");
          quorum = f[1];
          break;
        default:
          bad(`unknown keyword ${JSON.stringify(f[0])}`);
      }
    }
    let q: Component;
    if (quorum === undefined) bad("a policy must define a quorum");
    if (quorum === "none") q = { kind: "group", n: 0, members: [] };
    else {
      if (KEYWORDS.has(quorum!)) bad(`invalid quorum name ${JSON.stringify(quorum)}`);
      const c = components.get(quorum!);
      if (!c) bad(`quorum component ${JSON.stringify(quorum)} not found`);
      q = c!.kind === "group" ? c! : { kind: "group", n: 1, members: [c!] };
    }
    return new Policy(text, q!, witnesses);
  }

  /**
   * cosigners returns the witnesses of the policy whose valid cosignature
   * the checkpoint note carries. A witness has cosigned when the note opens
   * with its key alone (openNote: a signature line of its key that does not
   * verify, before one that does, counts as not cosigned).
   */
  async cosigners(checkpoint: Input): Promise<PolicyWitness[]> {
    const note = asBytes(checkpoint);
    if (note.length > MAX_CHECKPOINT_BYTES) return [];
    const out: PolicyWitness[] = [];
    for (const w of this.witnesses) {
      try {
        await openNote(note, [w.key]);
        out.push(w);
      } catch {
        // not cosigned by w
      }
    }
    return out;
  }

  /**
   * satisfied reports whether the checkpoint note carries enough valid
   * cosignatures for the quorum. Verify the checkpoint's log signature
   * first (verifyCheckpoint): this looks at cosignatures only.
   */
  async satisfied(checkpoint: Input): Promise<boolean> {
    const have = new Set((await this.cosigners(checkpoint)).map((w) => w.name));
    const sat = (c: Component): boolean => {
      if (c.kind === "witness") return have.has(c.witness.name);
      if (c.n <= 0) return true;
      let k = 0;
      for (const m of c.members) if (sat(m) && ++k >= c.n) return true;
      return false;
    };
    return sat(this.quorum);
  }

  /** check throws a VerificationError with code `policy` unless the checkpoint satisfies the policy. */
  async check(checkpoint: Input): Promise<void> {
    if (await this.satisfied(checkpoint)) return;
    const have = (await this.cosigners(checkpoint)).map((w) => w.key.name);
    throw new VerificationError(
      "policy",
      have.length === 0 ? "the checkpoint has no valid cosignature by a witness of the policy" : `the checkpoint is cosigned by ${have.join(", ")} only`,
    );
  }
}

/** parsePolicy is Policy.parse. */
export function parsePolicy(input: Input): Policy {
  return Policy.parse(input);
}

function joinURL(u: string): string {
  return u.replace(/\/+$/, "") + "/add-checkpoint";
}

const HOST_OK = /^[A-Za-z0-9\-._~!$&'()*+,;=:[\]<>"]$/;

/**
 * checkURL reports whether Go's net/url.Parse accepts a witness URL: no
 * control characters, well-formed %-escapes, a scheme when the first
 * segment has a colon, and for "scheme://host" a valid host and port.
 */
function checkURL(raw: string): boolean {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(raw)) return false;
  const [rest0, frag] = cutOnce(raw, "#");
  if (frag !== undefined && !escapesOK(frag)) return false;
  let rest = rest0;
  let scheme = "";
  const sm = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(rest);
  if (rest.startsWith(":")) return false;
  if (sm) {
    scheme = sm[1]!.toLowerCase();
    rest = rest.slice(sm[0].length);
  }
  rest = cutOnce(rest, "?")[0];
  if (!rest.startsWith("/")) {
    if (scheme !== "") return true; // opaque
    const first = cutOnce(rest, "/")[0];
    if (first.includes(":")) return false;
  }
  if ((scheme !== "" || !rest.startsWith("///")) && rest.startsWith("//")) {
    let authority = rest.slice(2);
    const slash = authority.indexOf("/");
    const path = slash >= 0 ? authority.slice(slash) : "";
    if (slash >= 0) authority = authority.slice(0, slash);
    const at = authority.lastIndexOf("@");
    if (at >= 0 && !/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(authority.slice(0, at))) return false;
    if (at >= 0 && !escapesOK(authority.slice(0, at))) return false;
    if (!hostOK(scheme, at >= 0 ? authority.slice(at + 1) : authority)) return false;
    return escapesOK(path);
  }
  return escapesOK(rest);
}

function cutOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

function escapesOK(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "%" && !/^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) return false;
  }
  return true;
}

function hostOK(scheme: string, host: string): boolean {
  const open = host.lastIndexOf("[");
  if (open > 0) return false;
  if (open === 0) {
    const close = host.lastIndexOf("]");
    if (close < 0) return false;
    if (!/^(:[0-9]*)?$/.test(host.slice(close + 1))) return false;
    return /^[0-9A-Fa-f:.]+(%25.*)?$/.test(host.slice(1, close)) && host.slice(1, close).includes(":");
  }
  const i = host.indexOf(":");
  if (i >= 0) {
    const port = scheme === "http" || scheme === "https" || host.lastIndexOf(":") === i ? host.slice(i) : host.slice(host.lastIndexOf(":"));
    if (!/^:[0-9]*$/.test(port)) return false;
  }
  for (let j = 0; j < host.length; j++) {
    const c = host[j]!;
    if (c === "%") {
      const h = host.slice(j + 1, j + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(h)) return false;
      if (parseInt(h[0]!, 16) < 8 && host.slice(j, j + 3) !== "%25") return false;
      j += 2;
    } else if (c.charCodeAt(0) < 0x80 && !HOST_OK.test(c)) return false;
  }
  return true;
}
