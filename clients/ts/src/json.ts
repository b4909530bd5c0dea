// Strict JSON and RFC 8785 (JCS) canonical form.
//
// The parser reads exactly what the Go verifier's RFC 8785 implementation
// (github.com/gowebpki/jcs) reads: RFC 8259 JSON, valid UTF-8, no duplicate
// member names (compared after unescaping), no lone surrogates, numbers
// within the range of a double, at most 10,000 levels of nesting. It keeps
// each number as written, because govlog's schema rules look at the
// literal (a sequence is an integer literal; an integer beyond 2^53 is
// refused however it is written). It is iterative: deep input cannot
// overflow the stack.

import { fromUTF8, type Input } from "./bytes.js";
import { fail } from "./errors.js";

/** A JSON number: the literal as written and its value as a double. */
export class JSONNumber {
  constructor(
    readonly raw: string,
    readonly value: number,
  ) {}
}

/** A JSON object: its members in document order, and by name. */
export class JSONObject {
  readonly members: [string, JSONValue][] = [];
  readonly byName = new Map<string, JSONValue>();
  get(name: string): JSONValue | undefined {
    return this.byName.get(name);
  }
  has(name: string): boolean {
    return this.byName.has(name);
  }
}

export type JSONValue = null | boolean | string | JSONNumber | JSONValue[] | JSONObject;

/** MAX_DEPTH is the deepest nesting of arrays and objects accepted. */
export const MAX_DEPTH = 10000;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

function isWS(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * parseJSON parses strict JSON (bytes must be valid UTF-8). It throws a
 * VerificationError with code `malformed`.
 */
export function parseJSON(input: Input): JSONValue {
  const text = typeof input === "string" ? input : fromUTF8(input);
  if (text === undefined) fail("malformed", "JSON: invalid UTF-8");
  // A string given by the caller may hold a lone surrogate, which no UTF-8 can.
  if (typeof input === "string" && LONE_SURROGATE.test(text)) fail("malformed", "JSON: a lone surrogate");
  return new Parser(text).parseDocument();
}

type Frame = { kind: "array"; value: JSONValue[] } | { kind: "object"; value: JSONObject; key: string };

class Parser {
  private i = 0;
  constructor(private readonly s: string) {}

  private err(msg: string): never {
    fail("malformed", `JSON: ${msg} at offset ${this.i}`);
  }

  private skipWS(): void {
    while (this.i < this.s.length && isWS(this.s.charCodeAt(this.i))) this.i++;
  }

  private peek(): number {
    this.skipWS();
    if (this.i >= this.s.length) this.err("unexpected end");
    return this.s.charCodeAt(this.i);
  }

  parseDocument(): JSONValue {
    const v = this.parseValue();
    this.skipWS();
    if (this.i !== this.s.length) this.err("data after the value");
    return v;
  }

  private parseValue(): JSONValue {
    const stack: Frame[] = [];
    let value: JSONValue;
    for (;;) {
      // Read one value, or open a container.
      const c = this.peek();
      if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        this.i++;
        if (stack.length >= MAX_DEPTH) this.err(`more than ${MAX_DEPTH} levels of nesting`);
        if (c === 0x5b) {
          const arr: JSONValue[] = [];
          if (this.peek() === 0x5d /* ] */) {
            this.i++;
            value = arr;
          } else {
            stack.push({ kind: "array", value: arr });
            continue;
          }
        } else {
          const obj = new JSONObject();
          if (this.peek() === 0x7d /* } */) {
            this.i++;
            value = obj;
          } else {
            stack.push({ kind: "object", value: obj, key: this.parseKey() });
            continue;
          }
        }
      } else if (c === 0x22 /* " */) {
        this.i++;
        value = this.parseString();
      } else {
        value = this.parseScalar();
      }
      // Add it to its container, closing containers as they end.
      for (;;) {
        const top = stack[stack.length - 1];
        if (!top) return value;
        if (top.kind === "array") {
          top.value.push(value);
        } else {
          if (top.value.byName.has(top.key)) this.err(`duplicate member ${JSON.stringify(top.key)}`);
          top.value.byName.set(top.key, value);
          top.value.members.push([top.key, value]);
        }
        const d = this.peek();
        this.i++;
        if (d === 0x2c /* , */) {
          if (top.kind === "object") top.key = this.parseKey();
          break;
        }
        if ((top.kind === "array" && d === 0x5d) || (top.kind === "object" && d === 0x7d)) {
          stack.pop();
          value = top.value;
          continue;
        }
        this.i--;
        this.err("expected , or the end of the container");
      }
    }
  }

  private parseKey(): string {
    if (this.peek() !== 0x22) this.err("expected a member name");
    this.i++;
    const key = this.parseString();
    if (this.peek() !== 0x3a /* : */) this.err("expected :");
    this.i++;
    return key;
  }

  private parseString(): string {
    const s = this.s;
    let out = "";
    let start = this.i;
    for (;;) {
      if (this.i >= s.length) this.err("unterminated string");
      const c = s.charCodeAt(this.i);
      if (c === 0x22) {
        out += s.slice(start, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) this.err("control character in a string");
      if (c !== 0x5c /* \ */) {
        this.i++;
        continue;
      }
      out += s.slice(start, this.i);
      const e = s[this.i + 1];
      this.i += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case "\\":
          out += "\\";
          break;
        case "/":
          out += "/";
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "u": {
          const u = this.hex4();
          if (u >= 0xdc00 && u <= 0xdfff) this.err("lone low surrogate");
          if (u >= 0xd800 && u <= 0xdbff) {
            if (s[this.i] !== "\\" || s[this.i + 1] !== "u") this.err("lone high surrogate");
            this.i += 2;
            const l = this.hex4();
            if (l < 0xdc00 || l > 0xdfff) this.err("lone high surrogate");
            out += String.fromCharCode(u, l);
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default:
          this.i -= 2;
          this.err("invalid escape");
      }
      start = this.i;
    }
  }

  private hex4(): number {
    const h = this.s.slice(this.i, this.i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) this.err("invalid \\u escape");
    this.i += 4;
    return parseInt(h, 16);
  }

  private parseScalar(): JSONValue {
    const s = this.s;
    const start = this.i;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x2c || c === 0x5d || c === 0x7d || isWS(c)) break;
      this.i++;
    }
    const tok = s.slice(start, this.i);
    switch (tok) {
      case "true":
        return true;
      case "false":
        return false;
      case "null":
        return null;
    }
    if (!NUMBER.test(tok)) {
      this.i = start;
      this.err(tok === "" ? "missing value" : "invalid literal or number");
    }
    const v = Number(tok);
    if (!Number.isFinite(v)) {
      this.i = start;
      this.err("number out of range");
    }
    return new JSONNumber(tok, v);
  }
}

/** numberToJCS is the RFC 8785 form of a double: ECMAScript's Number::toString. */
export function numberToJCS(v: number): string {
  if (!Number.isFinite(v)) fail("malformed", "JSON: a number is not finite");
  return String(v); // -0 is "0"
}

/** quoteJCS is the RFC 8785 form of a string. */
export function quoteJCS(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(start, i);
    start = i + 1;
    switch (c) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += "\\\\";
        break;
      case 0x08:
        out += "\\b";
        break;
      case 0x09:
        out += "\\t";
        break;
      case 0x0a:
        out += "\\n";
        break;
      case 0x0c:
        out += "\\f";
        break;
      case 0x0d:
        out += "\\r";
        break;
      default:
        out += "\\u" + c.toString(16).padStart(4, "0");
    }
  }
  return out + s.slice(start) + '"';
}

function compareUTF16(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0; // JavaScript compares strings by UTF-16 code units
}

/** canonicalize writes a parsed value in RFC 8785 canonical form (iteratively). */
export function canonicalize(value: JSONValue): string {
  const parts: string[] = [];
  // Work items: a value to write, or a literal piece of text.
  const work: (JSONValue | { text: string })[] = [value];
  while (work.length > 0) {
    const v = work.pop()!;
    if (v === null) parts.push("null");
    else if (v === true) parts.push("true");
    else if (v === false) parts.push("false");
    else if (typeof v === "string") parts.push(quoteJCS(v));
    else if (v instanceof JSONNumber) parts.push(numberToJCS(v.value));
    else if (Array.isArray(v)) {
      parts.push("[");
      work.push({ text: "]" });
      for (let i = v.length - 1; i >= 0; i--) {
        work.push(v[i]!);
        if (i > 0) work.push({ text: "," });
      }
    } else if (v instanceof JSONObject) {
      parts.push("{");
      work.push({ text: "}" });
      const members = [...v.members].sort((a, b) => compareUTF16(a[0], b[0]));
      for (let i = members.length - 1; i >= 0; i--) {
        work.push(members[i]![1]);
        work.push({ text: (i > 0 ? "," : "") + quoteJCS(members[i]![0]) + ":" });
      }
    } else parts.push(v.text);
  }
  return parts.join("");
}

/**
 * canonicalJSON parses strict JSON and returns its RFC 8785 canonical
 * form. It throws a VerificationError with code `malformed`.
 */
export function canonicalJSON(input: Input): string {
  return canonicalize(parseJSON(input));
}
