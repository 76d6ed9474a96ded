// The page's side of the public API: the optional API key (kept in localStorage, sent on fetch
// calls only, never on an EventSource), one JSON call with the API's error shape, and the
// page's error box, where every refusal ends up.

import { $ } from './dom.js';

const KEY_STORE = 'tokenrelay.apiKey';

export function storedKey() {
  try {
    return localStorage.getItem(KEY_STORE) || '';
  } catch {
    // Storage can be refused (privacy settings); the key then lives in the input only.
    return $('api-key').value.trim();
  }
}

export function storeKey(value) {
  try {
    if (value) localStorage.setItem(KEY_STORE, value);
    else localStorage.removeItem(KEY_STORE);
  } catch {
    // See storedKey.
  }
}

/** A refusal from the API, with its stable error code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** One JSON call; `credential` (a stream's write token, say) is sent when no API key is set. */
export async function api(method, path, body, credential) {
  const headers = {};
  const bearer = storedKey() || credential;
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach the server: ${e.message}`);
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: reported below with the status.
  }
  if (!response.ok) {
    const error = (json && json.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || `${method} ${path} answered ${response.status}`);
  }
  return json;
}

/** A stream's status document; `token` is its read token (none needed without keys). */
export function streamPath(id, token) {
  const query = token ? `?${new URLSearchParams({ token })}` : '';
  return `/v1/streams/${encodeURIComponent(id)}${query}`;
}

/** Shows `error` in the page's alert box, or hides the box when `error` is null. */
export function showError(error) {
  const box = $('error');
  if (!error) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  let text = error.message || String(error);
  if (error.code === 'missing_api_key' || error.code === 'invalid_api_key') {
    text += ' Enter a client API key at the top of the page.';
  }
  box.textContent = error.code ? `${text} (${error.code})` : text;
  box.hidden = false;
}
