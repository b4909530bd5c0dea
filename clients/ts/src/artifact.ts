// Authorization artifacts: the EdDSA JWT an allow decision gets (wire
// contract §5), verified as the Go package verifier does
// (verifier.Artifact) and checked against what a runtime is about to do
// (client.VerifyArtifact).

import { base64, base64Any, base64urlStrict, fromUTF8 } from "./bytes.js";
import { ed25519Verify } from "./crypto.js";
import { fail } from "./errors.js";
import { JSONNumber, JSONObject, parseJSON, quoteJCS, type JSONValue } from "./json.js";
import type { Verified } from "./receipt.js";
import { parseUTC } from "./time.js";

/** The JWT "typ" of an authorization artifact. */
export const ARTIFACT_TYPE = "govlog-authz+jwt";
/** DEFAULT_LEEWAY_SECONDS is the clock skew tolerated on exp and nbf. */
export const DEFAULT_LEEWAY_SECONDS = 30;
/** MAX_ARTIFACT_BYTES bounds an artifact token. */
export const MAX_ARTIFACT_BYTES = 8 << 10;

/** The claims of an authorization artifact. */
export interface ArtifactClaims {
  /** iss: the log's origin. */
  readonly iss: string;
  /** sub: the decision's subject. */
  readonly sub: string;
  /** jti: the decision's id. */
  readonly jti: string;
  readonly iat: number;
  readonly nbf: number;
  /** exp: the entry's authorized_until, in Unix seconds. */
  readonly exp: number;
  /** aud: the decision's executor or the log's configured audience, "" when absent. */
  readonly aud: string;
  readonly action: string;
  /** resource: "" when the decision has none. */
  readonly resource: string;
  /** govlog binds the artifact to its entry and the checkpoint of its receipt. */
  readonly govlog: {
    readonly index: bigint;
    /** key_index: the index of the signing key's key entry (API §2e); undefined in artifacts that name none. */
    readonly key_index?: bigint;
    readonly leaf_hash: string;
    readonly tree_size: bigint;
    readonly root_hash: string;
  };
}

/** A JSON Web Key Set, parsed: its keys by kid, first one winning. */
export class JWKS {
  private constructor(private readonly keys: readonly JSONObject[]) {}

  /**
   * parse reads a JWKS (RFC 7517): an object whose "keys" is an array of
   * JWKs, each an object with a string kty (EC, OKP, RSA or oct). It throws
   * `bad_key`.
   */
  static parse(text: string | Uint8Array): JWKS {
    let v: JSONValue;
    try {
      v = parseJSON(text);
    } catch (e) {
      fail("bad_key", `the JWKS is not JSON: ${(e as Error).message}`);
    }
    const keys = v instanceof JSONObject ? v.get("keys") : undefined;
    if (!Array.isArray(keys)) fail("bad_key", 'the JWKS has no "keys" array');
    for (const k of keys) {
      const kty = k instanceof JSONObject ? k.get("kty") : undefined;
      if (typeof kty !== "string" || !["EC", "OKP", "RSA", "oct"].includes(kty)) fail("bad_key", "a JWK of the set has no valid kty");
    }
    return new JWKS(keys as JSONObject[]);
  }

  /**
   * ed25519Key returns the Ed25519 public key of the first JWK of kid, which
   * must be usable for EdDSA signatures: kty OKP, crv Ed25519, x 32 bytes,
   * alg absent or EdDSA, use absent or sig. It throws `bad_signature`.
   */
  ed25519Key(kid: string): Uint8Array {
    const k = this.keys.find((k) => k.get("kid") === kid);
    if (!k) fail("bad_signature", `the JWKS has no key ${JSON.stringify(kid)}`);
    const alg = k.get("alg");
    if (alg !== undefined && alg !== "" && alg !== "EdDSA") fail("bad_signature", `JWKS key ${JSON.stringify(kid)} is for ${String(alg)}, not EdDSA`);
    const use = k.get("use");
    if (use !== undefined && use !== "" && use !== "sig") fail("bad_signature", `JWKS key ${JSON.stringify(kid)} is not for signatures`);
    const x = k.get("x");
    const pub = k.get("kty") === "OKP" && k.get("crv") === "Ed25519" && typeof x === "string" ? base64Any(x) : undefined;
    if (!pub) fail("bad_signature", `JWKS key ${JSON.stringify(kid)} is not an Ed25519 key`);
    if (pub.length !== 32) fail("bad_signature", `JWKS key ${JSON.stringify(kid)} is ${pub.length} bytes, an Ed25519 key is 32`);
    return pub;
  }
}

/** What verifyArtifact requires of an artifact. */
export interface ArtifactOptions {
  /** origin is the log's origin, the required iss; default: the origin of receipt's checkpoint. One of the two is required. */
  origin?: string;
  /** audience is the required aud; when absent or "", the artifact must have none. */
  audience?: string;
  /** now is the time (Unix seconds, or a Date) exp and nbf are checked at; default: now. */
  now?: number | Date;
  /** leewaySeconds is the clock skew tolerated on exp and nbf; default 30; negative: none. */
  leewaySeconds?: number;
  /**
   * receipt is the verified receipt the artifact came with, if any: the
   * artifact must then be bound to it (jti, sub, action, resource, exp,
   * iat, nbf and the govlog claim are its entry's and checkpoint's).
   */
  receipt?: Verified;
}

const CLAIM_NAMES = ["action", "aud", "exp", "govlog", "iat", "iss", "jti", "nbf", "resource", "sub"];
const REQUIRED_CLAIMS = ["iss", "sub", "jti", "iat", "nbf", "exp", "action", "govlog"];

function int64(v: JSONValue | undefined, name: string): bigint {
  if (!(v instanceof JSONNumber) || !/^-?(0|[1-9][0-9]*)$/.test(v.raw)) fail("bad_artifact", `the artifact's ${name} is not an integer`);
  const n = BigInt(v.raw);
  if (n < -(2n ** 63n) || n >= 2n ** 63n) fail("bad_artifact", `the artifact's ${name} is out of range`);
  return n;
}

function uint64(v: JSONValue | undefined, name: string): bigint {
  if (!(v instanceof JSONNumber) || !/^(0|[1-9][0-9]*)$/.test(v.raw) || BigInt(v.raw) > 0xffffffffffffffffn) {
    fail("bad_artifact", `the artifact's ${name} is not an unsigned integer`);
  }
  return BigInt(v.raw);
}

/**
 * payloadOf is the JWT payload of claims as govlog writes it (the Go
 * log.ArtifactClaims.Payload): RFC 8785 canonical JSON, aud and resource
 * only when set, integers exactly.
 */
function payloadOf(c: ArtifactClaims, ints: { iat: bigint; nbf: bigint; exp: bigint }): string {
  return (
    `{"action":${quoteJCS(c.action)}` +
    (c.aud !== "" ? `,"aud":${quoteJCS(c.aud)}` : "") +
    `,"exp":${ints.exp},"govlog":{"index":${c.govlog.index}` +
    (c.govlog.key_index !== undefined ? `,"key_index":${c.govlog.key_index}` : "") +
    `,"leaf_hash":${quoteJCS(c.govlog.leaf_hash)},` +
    `"root_hash":${quoteJCS(c.govlog.root_hash)},"tree_size":${c.govlog.tree_size}}` +
    `,"iat":${ints.iat},"iss":${quoteJCS(c.iss)},"jti":${quoteJCS(c.jti)},"nbf":${ints.nbf}` +
    (c.resource !== "" ? `,"resource":${quoteJCS(c.resource)}` : "") +
    `,"sub":${quoteJCS(c.sub)}}`
  );
}

function claimsFrom(payload: Uint8Array): ArtifactClaims {
  let v: JSONValue;
  try {
    v = parseJSON(payload);
  } catch (e) {
    fail("bad_artifact", `the artifact's claims: ${(e as Error).message}`);
  }
  if (!(v instanceof JSONObject)) fail("bad_artifact", "the artifact's claims are not a JSON object");
  for (const [k] of v.members) if (!CLAIM_NAMES.includes(k)) fail("bad_artifact", `the artifact has an unknown claim ${JSON.stringify(k)}`);
  for (const k of REQUIRED_CLAIMS) if (!v.has(k)) fail("bad_artifact", `the artifact has no ${k} claim`);
  const str = (o: JSONObject, k: string, prefix = ""): string => {
    const s = o.get(k) ?? "";
    if (typeof s !== "string") fail("bad_artifact", `the artifact's ${prefix}${k} is not a string`);
    return s;
  };
  const g = v.get("govlog");
  if (!(g instanceof JSONObject)) fail("bad_artifact", "the artifact's govlog claim is not an object");
  for (const [k] of g.members) {
    if (!["index", "key_index", "leaf_hash", "tree_size", "root_hash"].includes(k)) fail("bad_artifact", `the artifact's govlog claim has an unknown member ${JSON.stringify(k)}`);
  }
  const ints = { iat: int64(v.get("iat"), "iat"), nbf: int64(v.get("nbf"), "nbf"), exp: int64(v.get("exp"), "exp") };
  const claims: ArtifactClaims = {
    iss: str(v, "iss"),
    sub: str(v, "sub"),
    jti: str(v, "jti"),
    iat: Number(ints.iat),
    nbf: Number(ints.nbf),
    exp: Number(ints.exp),
    aud: str(v, "aud"),
    action: str(v, "action"),
    resource: str(v, "resource"),
    govlog: {
      index: g.has("index") ? uint64(g.get("index"), "govlog.index") : 0n,
      ...(g.has("key_index") ? { key_index: uint64(g.get("key_index"), "govlog.key_index") } : {}),
      leaf_hash: str(g, "leaf_hash", "govlog."),
      tree_size: g.has("tree_size") ? uint64(g.get("tree_size"), "govlog.tree_size") : 0n,
      root_hash: str(g, "root_hash", "govlog."),
    },
  };
  // One artifact, one encoding, read alike by every JSON parser.
  if (fromUTF8(payload) !== payloadOf(claims, ints)) fail("bad_artifact", "the artifact's claims are not the canonical JSON of govlog claims");
  return claims;
}

function parts(token: string): [Uint8Array, Uint8Array, Uint8Array] {
  const p = token.split(".");
  if (p.length !== 3) fail("bad_artifact", "the artifact is not a compact JWS of three parts");
  return p.map((s, i) => base64urlStrict(s) ?? fail("bad_artifact", `artifact part ${i + 1} is not canonical unpadded base64url`)) as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
}

/**
 * verifyArtifact verifies an authorization artifact and returns its claims:
 *
 * 1. the token is at most 8 KiB, three parts of canonical unpadded base64url;
 * 2. the protected header is a JSON object with exactly alg "EdDSA", typ
 *    "govlog-authz+jwt" and a non-empty kid;
 * 3. the signature verifies with the Ed25519 key of that kid in jwks;
 * 4. the payload is the RFC 8785 canonical JSON of the artifact claims
 *    (iss, sub, jti, iat, nbf, exp, action, govlog; aud and resource when
 *    set), iss the origin, aud the audience (none when none is given), and
 *    nbf - leeway ≤ now < exp + leeway;
 * 5. with a receipt, the claims are bound to it.
 *
 * It throws a VerificationError: `bad_artifact`, `bad_signature` or
 * `binding`.
 */
export async function verifyArtifact(token: string, jwks: JWKS, opts: ArtifactOptions = {}): Promise<ArtifactClaims> {
  let origin = opts.origin ?? "";
  if (opts.receipt) {
    if (origin === "") origin = opts.receipt.checkpoint.origin;
    else if (origin !== opts.receipt.checkpoint.origin) fail("binding", `the receipt is from log ${opts.receipt.checkpoint.origin}, not ${origin}`);
  }
  if (origin === "") throw new Error("verifyArtifact needs an origin or a receipt");
  if (token.length > MAX_ARTIFACT_BYTES) fail("bad_artifact", `the artifact is ${token.length} bytes, the limit is ${MAX_ARTIFACT_BYTES}`);
  const [hdrBytes, payload, sig] = parts(token);
  let hdr: JSONValue;
  try {
    hdr = parseJSON(hdrBytes);
  } catch (e) {
    fail("bad_artifact", `the artifact header: ${(e as Error).message}`);
  }
  if (!(hdr instanceof JSONObject)) fail("bad_artifact", "the artifact header is not a JSON object");
  for (const [k, v] of hdr.members) {
    if (!["alg", "kid", "typ"].includes(k)) fail("bad_artifact", "the artifact header has members other than alg, kid and typ");
    if (typeof v !== "string") fail("bad_artifact", `the artifact header's ${k} is not a string`);
  }
  if (hdr.get("alg") !== "EdDSA") fail("bad_artifact", `the artifact algorithm is ${JSON.stringify(hdr.get("alg") ?? "")}, only EdDSA is accepted`);
  if (hdr.get("typ") !== ARTIFACT_TYPE) fail("bad_artifact", `the artifact typ is ${JSON.stringify(hdr.get("typ") ?? "")}, want ${ARTIFACT_TYPE}`);
  const kid = hdr.get("kid");
  if (typeof kid !== "string" || kid === "") fail("bad_artifact", "the artifact header has no kid");
  const pub = jwks.ed25519Key(kid);
  const dot = token.lastIndexOf(".");
  if (!(await ed25519Verify(pub, new TextEncoder().encode(token.slice(0, dot)), sig))) {
    fail("bad_signature", `the artifact signature does not verify with key ${JSON.stringify(kid)}`);
  }
  const c = claimsFrom(payload);
  if (c.iss !== origin) fail("bad_artifact", `the artifact issuer is ${JSON.stringify(c.iss)}, want ${JSON.stringify(origin)}`);
  const audience = opts.audience ?? "";
  if (c.aud !== audience) {
    fail("bad_artifact", audience === "" ? `the artifact is for audience ${JSON.stringify(c.aud)}, and no audience is configured` : `the artifact audience is ${JSON.stringify(c.aud)}, want ${JSON.stringify(audience)}`);
  }
  const now = opts.now === undefined ? Date.now() / 1000 : opts.now instanceof Date ? opts.now.getTime() / 1000 : opts.now;
  const leeway = opts.leewaySeconds === undefined || opts.leewaySeconds === 0 ? DEFAULT_LEEWAY_SECONDS : Math.max(0, opts.leewaySeconds);
  if (!(now < c.exp + leeway)) fail("bad_artifact", `the artifact expired at ${new Date(c.exp * 1000).toISOString()}`);
  if (now < c.nbf - leeway) fail("bad_artifact", `the artifact is not valid before ${new Date(c.nbf * 1000).toISOString()}`);
  if (opts.receipt) checkBinding(c, opts.receipt);
  return c;
}

function unix(s: string): number {
  return parseUTC(s, s.includes("."))!.sec;
}

function checkBinding(c: ArtifactClaims, v: Verified): void {
  const d = v.entry.decision;
  if (v.entry.kind !== "decision" || !d || d.outcome !== "allow") fail("binding", "the receipt's entry is not an allow decision");
  const want: [string, unknown, unknown][] = [
    ["jti", c.jti, d.id],
    ["sub", c.sub, d.subject],
    ["action", c.action, d.action],
    ["resource", c.resource, d.resource],
    ["exp", c.exp, unix(v.entry.authorizedUntil)],
    ["iat", c.iat, unix(v.entry.loggedAt)],
    ["nbf", c.nbf, unix(v.entry.loggedAt)],
    ["govlog.index", c.govlog.index, v.index],
    ["govlog.leaf_hash", c.govlog.leaf_hash, base64(v.leafHash)],
    ["govlog.tree_size", c.govlog.tree_size, v.checkpoint.size],
    ["govlog.root_hash", c.govlog.root_hash, base64(v.checkpoint.rootHash)],
  ];
  for (const [name, got, w] of want) {
    if (got !== w) fail("binding", `the artifact's ${name} is ${String(got)}, the receipt says ${String(w)}`);
  }
}

/** What a runtime is about to do, which an artifact must authorize. */
export interface Authorization {
  /** action must be exactly the artifact's action. */
  action: string;
  /** resource must be exactly the artifact's resource ("" or absent for none). */
  resource?: string;
  /** subject, when set, must be the artifact's sub. */
  subject?: string;
}

/**
 * authorize checks that verified claims authorize exactly want (as the Go
 * client.VerifyArtifact). It throws `not_authorized`.
 */
export function authorize(claims: ArtifactClaims, want: Authorization): void {
  if (!want.action) throw new Error("authorize needs an action");
  if (claims.action !== want.action) fail("not_authorized", `the artifact authorizes action ${JSON.stringify(claims.action)}, not ${JSON.stringify(want.action)}`);
  if (claims.resource !== (want.resource ?? "")) {
    fail("not_authorized", `the artifact authorizes resource ${JSON.stringify(claims.resource)}, not ${JSON.stringify(want.resource ?? "")}`);
  }
  if (want.subject && claims.sub !== want.subject) fail("not_authorized", `the artifact authorizes subject ${JSON.stringify(claims.sub)}, not ${JSON.stringify(want.subject)}`);
}
