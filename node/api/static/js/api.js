// The node's local API, from the page: same origin, the session cookie goes along by itself
// (HttpOnly: this script never sees it). Errors become ApiError with the API's type and hint.

export class ApiError extends Error {
  constructor(status, type, message, hint) {
    super(message);
    this.status = status;
    this.type = type;
    this.hint = hint;
  }
}

/** Calls the API; returns the decoded JSON answer. `body` is sent as JSON. */
export async function api(path, { method = "GET", body, query } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.set(k, v);
    if ([...params].length) url += "?" + params;
  }
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return answer(await fetch(url, init));
}

/** Returns the JSON of a response, or throws ApiError. */
export async function answer(response) {
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const e = (data && data.error) || {};
    const error = new ApiError(response.status, e.type || "HTTPError", e.message || response.statusText, e.hint || "");
    if (response.status === 401) window.dispatchEvent(new CustomEvent("workwork:logged-out"));
    throw error;
  }
  return data;
}

/** Trades a one-time login code for a session cookie. */
export function login(code) {
  return api("/v1/session", { method: "POST", body: { code } });
}

export function logout() {
  return api("/v1/session", { method: "DELETE" });
}

// Who we are, read once per page load (the status and our profile).
let me = null;

export async function whoami() {
  if (me) return me;
  const status = await api("/v1/status");
  let profile = null;
  try {
    profile = await api("/v1/profile");
  } catch (error) {
    if (error.status !== 404) throw error;
  }
  me = { key: status.public_key, wallet: status.wallet, status, profile };
  return me;
}

export function forget() {
  me = null;
  names.clear();
}

// Display names of authors, from their profiles.
const names = new Map();

/** Returns an author's display name, or a short key when they have no profile here. */
export async function nameOf(key) {
  if (!names.has(key)) {
    names.set(
      key,
      api("/v1/profile", { query: { author: key } })
        .then((p) => p.fields.name)
        .catch(() => key.slice(0, 8) + "…"),
    );
  }
  return names.get(key);
}
