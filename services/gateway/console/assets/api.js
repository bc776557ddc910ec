// The console's one way to the platform: the REST API on this origin, with the
// credential the person logged in with. Nothing here builds HTML.

const TOKEN = "modelport.token";
const CSRF = "modelport.csrf";
const MODE = "modelport.mode"; // "token" (Authorization header) | "cookie" (login session)

/** An answer that was not 2xx, with the platform's error envelope unpacked. */
export class ApiError extends Error {
  constructor(status, body) {
    const env = body && typeof body === "object" ? body : {};
    const err = env.error && typeof env.error === "object" ? env.error : {};
    const message = err.message || (typeof env.error === "string" ? env.error : "") ||
      (typeof body === "string" && body.trim() ? body.trim().slice(0, 300) : `HTTP ${status}`);
    super(message);
    this.status = status;
    this.code = err.code || env.code || "";
    this.fix = err.fix || env.fix || "";
    this.problems = Array.isArray(err.problems) ? err.problems : [];
  }
}

/** Where the credential lives: sessionStorage, so it ends with the tab. */
export const session = {
  get mode() { return sessionStorage.getItem(MODE) || ""; },
  get token() { return sessionStorage.getItem(TOKEN) || ""; },
  useToken(token) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(MODE, "token");
    sessionStorage.removeItem(CSRF);
  },
  useCookie(csrf) {
    sessionStorage.setItem(CSRF, csrf);
    sessionStorage.setItem(MODE, "cookie");
    sessionStorage.removeItem(TOKEN);
  },
  clear() { for (const k of [TOKEN, CSRF, MODE]) sessionStorage.removeItem(k); },
};

/** Headers every call carries: the token, or the session cookie's CSRF token. */
export function authHeaders(extra = {}) {
  const headers = { ...extra };
  if (session.mode === "token") headers.Authorization = `Bearer ${session.token}`;
  const csrf = sessionStorage.getItem(CSRF);
  if (csrf) headers["X-CSRF-Token"] = csrf;
  return headers;
}

let unauthorized = () => {};
/** What to do when the credential stops working (it expired, or was revoked). */
export function onUnauthorized(fn) { unauthorized = fn; }

async function body(resp) {
  const type = resp.headers.get("content-type") || "";
  if (type.includes("json")) {
    try { return await resp.json(); } catch { return null; }
  }
  return resp.text();
}

function failed(status, data) {
  const err = new ApiError(status, data);
  if (status === 401) unauthorized(err);
  return err;
}

/** One call; resolves to {data, headers, status}, rejects with ApiError. */
export async function request(method, path, { json, form, headers = {}, signal } = {}) {
  const init = { method, headers: authHeaders(headers), credentials: "same-origin", signal };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (form !== undefined) {
    init.body = form;
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, { error: { message: "the platform did not answer",
      fix: "check that `modelport up` is running, then try again" } });
  }
  const data = await body(resp);
  if (!resp.ok) throw failed(resp.status, data);
  return { data, headers: resp.headers, status: resp.status };
}

export const get = async (path, opts) => (await request("GET", path, opts)).data;
export const call = async (method, path, json) => (await request(method, path, { json })).data;

/** A multipart upload with progress (fetch cannot report upload progress). */
export function upload(method, path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.withCredentials = true;
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      let data = xhr.responseText;
      try { data = JSON.parse(xhr.responseText); } catch { /* a text answer */ }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(data);
      } else {
        reject(failed(xhr.status, data));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, { error: {
      message: "the upload did not reach the platform",
      fix: "check that `modelport up` is running, then try again" } })));
    xhr.send(form);
  });
}

/** A streamed text answer (logs with follow=true), handed on piece by piece. */
export async function stream(path, onText, signal) {
  const resp = await fetch(path, { headers: authHeaders(), credentials: "same-origin", signal });
  if (!resp.ok) throw failed(resp.status, await body(resp));
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    onText(decoder.decode(value, { stream: true }));
  }
}

export const enc = encodeURIComponent;
