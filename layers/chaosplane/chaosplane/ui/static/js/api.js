// The API client: one place that holds the token (sessionStorage, never a URL) and turns HTTP errors
// into ApiError with the API's field errors, so forms can show each message beside its field.

const TOKEN_KEY = "chaosplane.token";
// The page is served at <api>/ui/, so the API is one level up (this keeps API Gateway's stage prefix).
export const API_BASE = new URL("../", document.baseURI).href;

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.reason || body.message)) || `HTTP ${status}`);
    this.status = status;
    this.errors = (body && Array.isArray(body.errors)) ? body.errors : [];
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const bearer = token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(new URL(path.replace(/^\//, ""), API_BASE), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { message: text }; }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

/** Every item of a paged list (`{items, next_token}`), following next_token. */
export async function all(path) {
  const items = [];
  let next = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", next ? `${path}${sep}next_token=${encodeURIComponent(next)}` : path);
    items.push(...page.items);
    next = page.next_token;
  } while (next);
  return items;
}
