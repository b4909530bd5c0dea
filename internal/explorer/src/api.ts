// The REST API of the same origin, with the read token when there is one.
//
// With read authentication on (govlogd --auth-reads), every API request
// needs a bearer token. The page asks for it once and keeps it in the
// tab's sessionStorage (gone when the tab closes); it is sent to this
// origin only, in the Authorization header of the API requests.

const TOKEN_KEY = "govlog-read-token";

export function token(): string {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

export function setToken(t: string): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer of the API: its status and error code. */
export class APIError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** NeedToken is thrown when the API answers 401 or 403: the page asks for a token. */
export class NeedToken extends APIError {}

async function get(path: string): Promise<Response> {
  const headers: Record<string, string> = {};
  const t = token();
  if (t) headers["Authorization"] = `Bearer ${t}`;
  const resp = await fetch(path, { headers, cache: "no-store", credentials: "omit", redirect: "error" });
  if (resp.ok) return resp;
  let code = "http_" + resp.status;
  let message = `${path}: HTTP ${resp.status}`;
  try {
    const body = await resp.json();
    if (body && body.error && typeof body.error.code === "string") {
      code = body.error.code;
      message = `${path}: ${resp.status} ${body.error.code}: ${String(body.error.message ?? "")}`;
    }
  } catch {
    // not JSON
  }
  if (resp.status === 401 || resp.status === 403) throw new NeedToken(resp.status, code, message);
  throw new APIError(resp.status, code, message);
}

export async function getJSON<T = any>(path: string): Promise<T> {
  return (await get(path)).json() as Promise<T>;
}

export async function getText(path: string): Promise<string> {
  return (await get(path)).text();
}

export async function getBytes(path: string): Promise<Uint8Array> {
  return new Uint8Array(await (await get(path)).arrayBuffer());
}

/** status returns the HTTP status of a GET, without reading the body (health probes). */
export async function status(path: string): Promise<number> {
  try {
    const resp = await fetch(path, { cache: "no-store", credentials: "omit" });
    return resp.status;
  } catch {
    return 0;
  }
}

/** LogInfo is GET /v1/log. */
export interface LogInfo {
  origin: string;
  verifier_key: string;
  tree_size: number;
  witness_policy: string;
  jwks_uri: string;
  artifact_ttl_seconds: number;
}

/** q builds a query string from the non-empty values. */
export function q(params: Record<string, string | number | bigint | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") u.set(k, String(v));
  const s = u.toString();
  return s ? "?" + s : "";
}
