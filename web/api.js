// The API as the pages use it: one fetch wrapper that sends the user's token (AUTH=jwt) and turns
// every failure into a sentence a person can read (never raw JSON).

const TOKEN_KEY = 'sceneworks.accessToken';
const body = document.body.dataset;

export const settings = {
  auth: body.auth === 'jwt' ? 'jwt' : 'none',
  providers: (body.providers || '').split(',').filter(Boolean),
  defaultProvider: body.defaultProvider || 'local',
};

export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** A Supabase redirect leaves `#access_token=…&…` in the URL: keep the token, drop the fragment. */
export function takeTokenFromUrl() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const token = params.get('access_token');
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  history.replaceState(null, '', location.pathname + location.search);
}

export const token = () => sessionStorage.getItem(TOKEN_KEY);
export const signedIn = () => settings.auth === 'none' || token() !== null;

export function signIn(value) {
  sessionStorage.setItem(TOKEN_KEY, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The token's claims (not verified: the service does that), or null when it is not a JWT. */
export function claims() {
  const t = token();
  if (!t) return null;
  try {
    const part = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
  } catch {
    return null;
  }
}

export function expired() {
  const c = claims();
  return c !== null && typeof c.exp === 'number' && c.exp * 1000 <= Date.now();
}

function authHeaders() {
  return settings.auth === 'jwt' && token() ? { authorization: `Bearer ${token()}` } : {};
}

function sentence(status, error) {
  if (status === 401) return expired() ? 'Your sign-in has expired. Sign in again to continue.' : 'You are not signed in, or your token was not accepted. Sign in again to continue.';
  if (status === 404) return 'Not found: it does not exist, or it is not yours.';
  if (status === 429) return error?.message ?? 'Too many requests: wait a moment and try again.';
  if (status >= 500) return 'The service had a problem answering. Try again in a moment.';
  return error?.message ?? `The request failed (HTTP ${status}).`;
}

/** Calls the API. Resolves to the parsed answer (null for 204); rejects with an ApiError. */
export async function api(method, path, payload) {
  const headers = authHeaders();
  if (payload !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload === undefined ? undefined : JSON.stringify(payload) });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The service cannot be reached. Check the connection and try again.');
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const error = data && typeof data === 'object' ? data.error : undefined;
    const err = new ApiError(res.status, error?.code ?? `HTTP_${res.status}`, sentence(res.status, error), error?.details ?? []);
    if (res.status === 401) dispatchEvent(new CustomEvent('sceneworks:unauthorized', { detail: err }));
    throw err;
  }
  return data;
}

/** The event stream URL of a project (EventSource cannot send headers: the token goes in the query). */
export function eventsUrl(projectId) {
  const base = `/projects/${encodeURIComponent(projectId)}/events`;
  return settings.auth === 'jwt' && token() ? `${base}?access_token=${encodeURIComponent(token())}` : base;
}

/**
 * Saves what `path` answers as a file. Without authentication a plain link would do; with it
 * the request must carry the token, so the bytes are fetched and handed to the browser.
 */
export async function download(path, fallbackName) {
  let res;
  try {
    res = await fetch(path, { headers: authHeaders() });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The service cannot be reached. Check the connection and try again.');
  }
  if (!res.ok) {
    let error;
    try {
      error = (await res.json()).error;
    } catch {
      error = undefined;
    }
    if (res.status === 401) dispatchEvent(new CustomEvent('sceneworks:unauthorized'));
    throw new ApiError(res.status, error?.code ?? `HTTP_${res.status}`, sentence(res.status, error));
  }
  const disposition = res.headers.get('content-disposition') ?? '';
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  const plain = /filename="([^"]+)"/i.exec(disposition);
  const name = star ? decodeURIComponent(star[1]) : plain ? plain[1] : fallbackName;
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
