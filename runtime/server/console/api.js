// The console's only way to the server: fetch /v1 with the signed-in token as a bearer header
// (no cookies, so no CSRF). A 401 from any call forgets the token and tells the app why.
const KEY = "spine.token";

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `the server answered ${status}`);
    this.status = status;
    this.kind = err.kind || "error";
    this.code = err.code || "";
    this.field = err.field || "";
  }
}

let unauthorized = () => {};

// fn(reason) runs when a call is refused 401, after the token is dropped.
export function onUnauthorized(fn) {
  unauthorized = fn;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  const init = { method, headers, credentials: "omit", cache: "no-store", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { error: { kind: "network", message: `cannot reach the server (${e.message})` } });
  }
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (res.status === 401) {
    token.clear();
    const err = new ApiError(401, data);
    unauthorized(err.message);
    throw err;
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// Who the signed-in token is (GET /v1/whoami: subject, scopes), asked once per token.
const whoamis = new Map();
export function whoami() {
  const t = token.get() || "";
  if (!whoamis.has(t)) {
    const p = api("GET", "/v1/whoami");
    p.catch(() => whoamis.delete(t)); // asked again next time
    whoamis.set(t, p);
  }
  return whoamis.get(t);
}

// Whether `me` (whoami's answer) holds `scope` (admin holds every one).
export const may = (me, scope) => !!me && Array.isArray(me.scopes) &&
  (me.scopes.includes(scope) || me.scopes.includes("admin"));

// "/v1/workflows?status=..." from a path and an object of parameters (empty ones left out).
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
