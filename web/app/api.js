// The API client: same origin, the HttpOnly session cookie does the authenticating (this
// code never sees a token after sign-in), JSON in and out. Every non-2xx answer becomes an
// ApiError carrying the body's stable `error` code, its `message` and `details`; a 401
// also tells the app (onUnauthorized), which sends the user back to sign-in.
import { newId } from './util.js';

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0: the service could not be reached)
   * @param {{error?: string, message?: string, details?: any}} body
   */
  constructor(status, body) {
    super(body?.message || `The service answered ${status}.`);
    this.status = status;
    this.code = body?.error || `http_${status}`;
    this.details = body?.details;
  }

  /** `validation_failed`: [{field, message}] */
  get fields() {
    return this.details?.fields || [];
  }
}

/** A readable sentence for any error a view caught. */
export function errorText(err) {
  if (err instanceof ApiError) {
    if (err.code === 'validation_failed' && err.fields.length) {
      return err.fields.map((f) => `${f.field}: ${f.message}`).join('; ');
    }
    return err.message;
  }
  return err?.message || String(err);
}

const unauthorizedListeners = new Set();

/** Called with the ApiError of every 401 (except sign-in's own). */
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

export function notifyUnauthorized(err) {
  for (const fn of [...unauthorizedListeners]) fn(err);
}

const seg = (s) => encodeURIComponent(s);

/**
 * @param {string} method
 * @param {string} path under /api
 * @param {{body?: any, query?: Record<string, any>, headers?: Record<string,string>,
 *          quiet401?: boolean}} [options]
 */
export async function request(method, path, options = {}) {
  const { body, query, headers = {}, quiet401 = false } = options;
  let url = `/api${path}`;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v != null && v !== '') params.set(k, String(v));
    const qs = params.toString();
    if (qs) url += `?${qs}`;
  }
  const init = { method, headers: { accept: 'application/json', ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, { error: 'network', message: `The service cannot be reached (${e.message}).` });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const shaped = data && typeof data === 'object' ? data : { message: text.slice(0, 300) || undefined };
    const err = new ApiError(res.status, shaped);
    if (res.status === 401 && !quiet401) notifyUnauthorized(err);
    throw err;
  }
  return data;
}

const get = (path, query) => request('GET', path, { query });
const post = (path, body, extra) => request('POST', path, { body, ...extra });
// Run operations take an Idempotency-Key: a retried POST then gets the run the first one
// started instead of a second run.
const run = (path, body) => post(path, body, { headers: { 'idempotency-key': newId() } });

/** Reads every page of a list endpoint (pages of 100, the server's largest). */
async function all(path, key, query = {}) {
  const out = [];
  for (let offset = 0; ; offset += 100) {
    const page = (await get(path, { ...query, limit: 100, offset }))[key];
    out.push(...page);
    if (page.length < 100) return out;
  }
}

export const api = {
  signIn: (token) => post('/auth/session', { token }, { quiet401: true }),
  /** Whether this browser's cookie session is open (never a 401). */
  signedIn: () => get('/auth/session').then((r) => r.signed_in === true),
  logout: () => post('/auth/logout'),

  /** Health answers 503 with the same body when the database is down: not an error here. */
  async health() {
    const res = await fetch('/api/health', { headers: { accept: 'application/json' } });
    return res.json();
  },
  /** The API document (for its info.version). */
  document: () => get('/openapi.json'),

  presets: {
    list: () => get('/presets/list').then((r) => r.presets),
    get: (id) => get(`/presets/${seg(id)}/get`),
    create: (body) => post('/presets/create', body),
    update: (id, body) => post(`/presets/${seg(id)}/update`, body),
    remove: (id) => post(`/presets/${seg(id)}/delete`),
  },

  conversations: {
    /** @param {{status?: string, limit?: number, offset?: number}} q */
    list: (q) => get('/conversations/list', q).then((r) => r.conversations),
    get: (id) => get(`/conversations/${seg(id)}/get`),
    /** Every finished agent session's transcript, oldest first. */
    turns: (id) => all(`/conversations/${seg(id)}/turns`, 'turns', { session_type: 'agent' }),
    sessions: (id) => all(`/conversations/${seg(id)}/sessions`, 'sessions'),
    mailbox: (id) => get(`/conversations/${seg(id)}/mailbox`),
    update: (id, patch) => post(`/conversations/${seg(id)}/update`, patch),
    run: (body) => run('/conversations/run', body),
    fork: (id, body) => run(`/conversations/${seg(id)}/fork`, body),
    fire: (id, body) => run(`/conversations/${seg(id)}/fire`, body),
    steer: (id, body) => post(`/conversations/${seg(id)}/steer`, body),
    interrupt: (id) => post(`/conversations/${seg(id)}/interrupt`),
  },

  sessions: {
    get: (id, withMessages = true) =>
      request('GET', `/sessions/${seg(id)}/get`, { query: { include_display_messages: withMessages } }),
    status: (id) => get(`/sessions/${seg(id)}/status`),
    execute: (body) => run('/sessions/execute', body),
    eventsUrl: (id, after) =>
      `/api/sessions/${seg(id)}/events${after ? `?last_event_id=${after}` : ''}`,
  },
};
