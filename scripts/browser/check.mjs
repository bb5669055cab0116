// A real Chromium (Debian's, driven by playwright-core) uses a running agent-runtime the way
// pages do, both ways a page can reach it:
//  A. same-origin: a page of the service's own origin signs in with POST /api/auth/session
//     and from then on sends nothing but the HttpOnly cookie (no Authorization header, checked
//     on every request): a 202 run, its events through a real EventSource (which must stop on
//     its own: the reconnect after the terminal event is a 204), a second EventSource resumed
//     with ?last_event_id=, and logout (the old cookie no longer authenticates, even replanted);
//  B. cross-origin: a page served from PAGE_ORIGIN (listed in the service's CORS_ORIGINS)
//     streams a run with fetch + Authorization + Idempotency-Key (a CORS preflight), reads the
//     body with a ReadableStream reader, then resumes with Last-Event-ID (another preflight);
//     a page of an origin not listed cannot read any answer (fetch rejects with a TypeError).
// Settings from the environment: BASE_URL (the service root, without /api), TOKEN (its
// AUTH_TOKEN), PAGE_ORIGIN (http://127.0.0.1:<port>: this script serves the page there),
// CHROMIUM (default /usr/bin/chromium). One Chromium process for the whole check. Exits 1
// with the failed check, the pages' console and the browser's view of the requests.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';

class CheckError extends Error {}

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (!value) {
    console.error(`check.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const BASE = env('BASE_URL').replace(/\/+$/, '');
const TOKEN = env('TOKEN');
const PAGE_ORIGIN = env('PAGE_ORIGIN').replace(/\/+$/, '');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const TIMEOUT_MS = Number(process.env.BROWSER_CHECK_TIMEOUT_MS ?? 90_000);

let passed = 0;
function check(condition, what) {
  if (!condition) throw new CheckError(what);
}
function ok(what) {
  passed += 1;
  console.log(`ok  ${what}`);
}
const show = (value) => JSON.stringify(value);

// What the browser said and did, printed when a check fails.
const journal = [];
function watch(page, label) {
  page.on('console', (m) => journal.push(`[${label} console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => journal.push(`[${label} pageerror] ${e.message}`));
  page.on('requestfailed', (r) =>
    journal.push(`[${label} requestfailed] ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) =>
    journal.push(`[${label} response] ${r.request().method()} ${r.url()} -> ${r.status()}`));
}

// ------------------------------------------------------------------ the pages' own servers

/** A static server for a trivial page: the origin a cross-origin page lives on. */
function servePage(port, title) {
  const server = http.createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><html><head><meta charset=utf-8><title>${title}</title></head>` +
        `<body><p>${title}</p></body></html>`);
    } else {
      res.writeHead(204); // favicon and the like: no console noise
      res.end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

// ------------------------------------------------------------------ helpers inside the pages

// Installed into each page (page.evaluate): an EventSource collector and an SSE fetch reader.
function installPageHelpers() {
  const TYPES = ['run_started', 'message_start', 'content_delta', 'content_done', 'message_end',
    'tool_call_start', 'tool_call_args_delta', 'tool_call_result', 'tool_call_end',
    'usage_snapshot', 'steering_injected', 'interrupt_received', 'compact_started',
    'compact_completed', 'handoff_completed', 'subagent_started', 'subagent_completed',
    'warning', 'run_completed', 'run_failed', 'message'];

  // Opens an EventSource on url and collects its events until the browser closes it (the
  // reconnect after the terminal event answers 204), or until timeoutMs, or an error storm.
  window.collectEventSource = (url, timeoutMs) => new Promise((resolve) => {
    const started = performance.now();
    const since = () => Math.round(performance.now() - started);
    const out = { events: [], opens: 0, errors: [], closedBy: null, terminalAtMs: null };
    const es = new EventSource(url);
    const finish = (how) => {
      if (out.closedBy) return;
      out.closedBy = how;
      out.readyState = es.readyState;
      es.close();
      clearTimeout(timer);
      resolve(out);
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    es.onopen = () => { out.opens += 1; };
    es.onerror = () => {
      out.errors.push({ atMs: since(), readyState: es.readyState });
      if (es.readyState === EventSource.CLOSED) finish('browser');
      else if (out.errors.length > 3) finish('error storm');
    };
    for (const type of TYPES) {
      es.addEventListener(type, (e) => {
        out.events.push({ type: e.type, id: e.lastEventId, data: e.data });
        if (type === 'run_completed' || type === 'run_failed') out.terminalAtMs = since();
      });
    }
  });

  // fetch, then read the body as server-sent events with a ReadableStream reader.
  window.fetchSse = async (url, init) => {
    const res = await fetch(url, init);
    const out = { status: res.status, contentType: res.headers.get('content-type'), fields: [], frames: [] };
    if (!res.body) return out;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    const frame = (block) => {
      const f = { data: [] };
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue; // keep-alive comments
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        out.fields.push(field);
        if (field === 'data') f.data.push(value);
        else f[field] = value;
      }
      if (f.data.length) out.frames.push({ id: f.id, type: f.event ?? 'message', data: f.data.join('\n') });
      else if (f.retry !== undefined) out.retry = f.retry;
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        frame(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
    if (buffer.trim()) frame(buffer);
    return out;
  };
}

// ------------------------------------------------------------------ event checks

/** Checks a whole stream: ids 1..N, one terminal run_completed last, data consistent. */
function checkStream(events, sessionId, what) {
  check(events.length >= 3, `${what}: only ${events.length} events: ${show(events)}`);
  events.forEach((e, i) => {
    check(Number(e.id) === i + 1, `${what}: event #${i + 1} has id ${e.id} (ids ${events.map((x) => x.id)})`);
    const data = JSON.parse(e.data);
    check(data.event_id === i + 1 && data.event_type === e.type && data.session_id === sessionId,
      `${what}: frame id ${e.id} / event ${e.type} disagrees with its data ${e.data}`);
  });
  check(events[0].type === 'run_started', `${what}: first event is ${events[0].type}`);
  const terminals = events.filter((e) => e.type === 'run_completed' || e.type === 'run_failed');
  check(terminals.length === 1 && events.at(-1).type === 'run_completed',
    `${what}: the stream should end with exactly one run_completed: ${events.map((e) => e.type)}`);
  return events.length;
}

function echoed(events) {
  const done = events.find((e) => e.type === 'content_done');
  return done ? JSON.parse(done.data).payload.text : undefined;
}

/** Checks a resumed stream: exactly the events after `after`, identical to the first read. */
function checkReplay(replay, original, after, what) {
  const expected = original.slice(after);
  check(replay.length === expected.length &&
    replay.every((e, i) => e.id === expected[i].id && e.type === expected[i].type && e.data === expected[i].data),
    `${what}: after id ${after} expected ids ${expected.map((e) => e.id)}, got ${replay.map((e) => e.id)}` +
    ` (${replay.map((e) => e.type)})`);
}

/** window.fetchSse in a cross-origin page; a rejected fetch (CORS) becomes a clear failure. */
async function fetchSse(page, what, url, init) {
  try {
    return await page.evaluate(([u, i]) => window.fetchSse(u, i), [url, init]);
  } catch (error) {
    const first = String(error?.message ?? error).split('\n')[0];
    throw new CheckError(`${what} from a page of ${PAGE_ORIGIN}: the browser gave the page no answer ` +
      `(${first}): CORS? see the console below`);
  }
}

// ------------------------------------------------------------------ A. same-origin, cookie

async function sameOrigin(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  watch(page, 'A');
  // Every request of this page, with its headers as sent (allHeaders: cookie included).
  const requests = [];
  page.on('request', (r) => requests.push(r.allHeaders().then((h) => ({
    method: r.method(), url: r.url(), kind: r.resourceType(), headers: h,
    status: r.response().then((res) => res?.status()),
  }))));
  const eventSourceRequests = async (sessionId) => (await Promise.all(requests))
    .filter((r) => r.kind === 'eventsource' && r.url.includes(`/api/sessions/${sessionId}/events`));

  const landing = await page.goto(`${BASE}/`);
  check(landing?.status() === 200, `GET ${BASE}/ answered ${landing?.status()}`);
  await page.evaluate(installPageHelpers);

  const before = await page.evaluate(async () => (await fetch('/api/presets/list')).status);
  check(before === 401, `a cookie-less GET /api/presets/list answered ${before}, not 401`);
  const signIn = await page.evaluate(async (token) => {
    const post = (body) => fetch('/api/auth/session', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const wrong = await post({ token: `${token}-wrong` });
    const right = await post({ token });
    return { wrong: wrong.status, right: right.status, documentCookie: document.cookie };
  }, TOKEN);
  check(signIn.wrong === 401, `sign-in with a wrong token answered ${signIn.wrong}, not 401`);
  check(signIn.right === 204, `sign-in answered ${signIn.right}, not 204`);
  const cookie = (await context.cookies(BASE)).find((c) => c.name === 'agent_runtime_session');
  check(cookie, `no agent_runtime_session cookie after sign-in: ${show(await context.cookies())}`);
  check(cookie.httpOnly && cookie.sameSite === 'Strict' && cookie.path === '/',
    `the session cookie should be HttpOnly, SameSite=Strict, Path=/: ${show({ ...cookie, value: '…' })}`);
  check(!signIn.documentCookie.includes('agent_runtime_session'), 'the page can read the HttpOnly cookie');
  ok('A: the landing page signs in with fetch: 204, an HttpOnly SameSite=Strict cookie the page cannot read (wrong token 401)');

  const input = `hello from a same-origin page ${randomUUID().slice(0, 8)}`;
  const run = await page.evaluate(async (text) => {
    const res = await fetch('/api/conversations/run', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ preset_id: 'default', input: [{ type: 'text', text }] }),
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  }, input);
  check(run.status === 202 && run.body?.session_id && run.body?.conversation_id && run.body?.stream_key,
    `POST /api/conversations/run with the cookie answered ${run.status} ${show(run.body)}`);
  const sessionId = run.body.session_id;
  ok(`A: POST /api/conversations/run with only the cookie: 202, session ${sessionId}`);

  // 1. a real EventSource from the start
  const first = await page.evaluate(([url]) => window.collectEventSource(url, 20_000),
    [`/api/sessions/${sessionId}/events`]);
  const n = checkStream(first.events, sessionId, 'EventSource');
  check(echoed(first.events) === `echo: ${input}`, `test:echo answered ${show(echoed(first.events))}`);
  ok(`A: EventSource got ${n} events, run_started .. run_completed, ids 1..${n}, "echo: ${input}"`);
  const firstRequests = await eventSourceRequests(sessionId);
  check(first.closedBy === 'browser' && first.readyState === 2 && first.opens === 1 && first.errors.length <= 2,
    `EventSource should close on its own after the terminal event (one reconnect, 204): closed by ` +
    `${first.closedBy}, opens ${first.opens}, errors ${show(first.errors)}, requests ` +
    `${show(firstRequests.map((r) => [r.headers['last-event-id'], r.status]))}`);
  const statuses = await Promise.all(firstRequests.map((r) => r.status));
  check(firstRequests.length === 2 && statuses[0] === 200 && !('last-event-id' in firstRequests[0].headers) &&
    firstRequests[1].headers['last-event-id'] === String(n) && statuses[1] === 204,
  `EventSource requests should be: 200 from the start, then one reconnect with Last-Event-ID: ${n} ` +
    `answered 204; got ${show(firstRequests.map((r, i) => ({ 'last-event-id': r.headers['last-event-id'], status: statuses[i] })))}`);
  ok(`A: EventSource closed itself (readyState CLOSED) after one reconnect: Last-Event-ID: ${n} -> 204, ` +
    `${first.errors.length} error events, closed ${first.errors.at(-1).atMs - first.terminalAtMs} ms after run_completed`);

  // 2. a second EventSource resumed after a middle id
  const middle = Math.ceil(n / 2);
  const resumedUrl = `/api/sessions/${sessionId}/events?last_event_id=${middle}`;
  const resumed = await page.evaluate(([url]) => window.collectEventSource(url, 20_000), [resumedUrl]);
  checkReplay(resumed.events, first.events, middle, `EventSource ?last_event_id=${middle}`);
  const resumedRequests = (await eventSourceRequests(sessionId)).filter((r) => r.url.endsWith(resumedUrl));
  const resumedStatuses = await Promise.all(resumedRequests.map((r) => r.status));
  check(resumed.closedBy === 'browser' && resumed.opens === 1 && resumedRequests.length === 2 &&
    resumedStatuses[0] === 200 && resumedRequests[1].headers['last-event-id'] === String(n) && resumedStatuses[1] === 204,
  `the resumed EventSource should close after one reconnect (Last-Event-ID: ${n} beside ?last_event_id=${middle} -> 204): ` +
    `closed by ${resumed.closedBy}, opens ${resumed.opens}, errors ${show(resumed.errors)}, requests ` +
    `${show(resumedRequests.map((r, i) => ({ 'last-event-id': r.headers['last-event-id'], status: resumedStatuses[i] })))}`);
  ok(`A: EventSource ?last_event_id=${middle} replayed exactly ids ${middle + 1}..${n} and closed itself the same way`);

  // 3. never an Authorization header: the cookie did it all
  const all = await Promise.all(requests);
  const withAuth = all.filter((r) => 'authorization' in r.headers);
  check(withAuth.length === 0, `requests with an Authorization header: ${show(withAuth.map((r) => r.url))}`);
  const apiWithoutCookie = all.filter((r) => r.url.startsWith(`${BASE}/api/`) &&
    !r.url.endsWith('/api/auth/session') && !r.url.endsWith('/api/presets/list') &&
    !(r.headers.cookie ?? '').includes(`agent_runtime_session=${cookie.value}`));
  check(apiWithoutCookie.length === 0, `API requests without the session cookie: ${show(apiWithoutCookie.map((r) => r.url))}`);
  ok(`A: ${all.length} requests, none with an Authorization header; every signed-in API request carried the cookie`);

  // 4. logout ends the session on the server
  const logout = await page.evaluate(async () => {
    const out = await fetch('/api/auth/logout', { method: 'POST' });
    const after = await fetch(`/api/presets/list`);
    return { logout: out.status, after: after.status };
  });
  check(logout.logout >= 200 && logout.logout < 300, `POST /api/auth/logout answered ${logout.logout}`);
  check(logout.after === 401, `a cookie-only request after logout answered ${logout.after}, not 401`);
  const left = (await context.cookies(BASE)).filter((c) => c.name === 'agent_runtime_session');
  await context.addCookies([{ ...cookie }]); // the old value, planted back: the server must refuse it
  const replanted = await page.evaluate(async (id) => ({
    list: (await fetch('/api/presets/list')).status,
    events: (await fetch(`/api/sessions/${id}/events`)).status,
  }), sessionId);
  check(replanted.list === 401 && replanted.events === 401,
    `the logged-out cookie planted back still authenticates: presets ${replanted.list}, events ${replanted.events}`);
  ok(`A: logout ${logout.logout}, then cookie-only requests are 401 (cookie ${left.length ? 'still in the jar' : 'cleared'}; ` +
    'the old value planted back is 401 too)');
  await context.close();
}

// ------------------------------------------------------------------ B. cross-origin, bearer

async function crossOrigin(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  watch(page, 'B');
  // Preflights are invisible to page.on('request'); DevTools' Network domain reports them
  const preflights = new Map();
  const cdp = await context.newCDPSession(page);
  // (the request is reported with type Other and method OPTIONS, its answer with type Preflight)
  cdp.on('Network.requestWillBeSent', (e) => {
    if (e.request.method === 'OPTIONS') preflights.set(e.requestId, { url: e.request.url, method: e.request.method });
  });
  cdp.on('Network.responseReceived', (e) => {
    const p = preflights.get(e.requestId);
    if (p) Object.assign(p, { type: e.type, status: e.response.status, responseHeaders: e.response.headers });
  });
  await cdp.send('Network.enable');

  const landing = await page.goto(`${PAGE_ORIGIN}/`);
  check(landing?.status() === 200, `GET ${PAGE_ORIGIN}/ answered ${landing?.status()}`);
  await page.evaluate(installPageHelpers);

  const key = randomUUID();
  const input = `hello from ${PAGE_ORIGIN} ${randomUUID().slice(0, 8)}`;
  const init = (extra = {}) => ({
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', 'Idempotency-Key': key, ...extra },
    body: JSON.stringify({ preset_id: 'default', input: [{ type: 'text', text: input }] }),
  });
  const stream = await fetchSse(page, 'POST /api/conversations/run/stream', `${BASE}/api/conversations/run/stream`, init());
  check(stream.status === 200 && stream.contentType?.startsWith('text/event-stream'),
    `POST /api/conversations/run/stream answered ${stream.status} ${stream.contentType}`);
  check(stream.fields[0] === 'retry' && stream.retry === '3000', `the stream should open with retry: 3000: fields ${stream.fields.slice(0, 3)}`);
  const sessionId = stream.frames[0] && JSON.parse(stream.frames[0].data).session_id;
  const n = checkStream(stream.frames, sessionId, 'run/stream');
  check(echoed(stream.frames) === `echo: ${input}`, `test:echo answered ${show(echoed(stream.frames))}`);
  ok(`B: a page of ${PAGE_ORIGIN} streamed POST /api/conversations/run/stream (Bearer, Idempotency-Key) ` +
    `through a ReadableStream reader: retry: 3000, ${n} events ending with run_completed`);

  const middle = Math.ceil(n / 2);
  const resumed = await fetchSse(page, `GET /api/sessions/{id}/events (Last-Event-ID: ${middle})`,
    `${BASE}/api/sessions/${sessionId}/events`,
    { headers: { Authorization: `Bearer ${TOKEN}`, 'Last-Event-ID': String(middle) } });
  check(resumed.status === 200, `GET …/events with Last-Event-ID: ${middle} answered ${resumed.status}`);
  checkReplay(resumed.frames, stream.frames, middle, `fetch Last-Event-ID: ${middle}`);
  ok(`B: fetch GET /api/sessions/{id}/events with Last-Event-ID: ${middle} replayed exactly ids ${middle + 1}..${n}`);

  // The same Idempotency-Key and body again: the same run's events, no second run.
  const repeat = await fetchSse(page, 'the repeated run/stream', `${BASE}/api/conversations/run/stream`, init());
  check(repeat.status === 200, `the repeated run/stream answered ${repeat.status}`);
  checkReplay(repeat.frames, stream.frames, 0, 'the repeated run/stream (same Idempotency-Key)');
  ok('B: the same POST with the same Idempotency-Key answered the first run\'s events again');

  const seen = [...preflights.values()];
  const preflightOf = (path) => seen.find((p) => p.method === 'OPTIONS' && new URL(p.url).pathname === path);
  for (const path of ['/api/conversations/run/stream', `/api/sessions/${sessionId}/events`]) {
    const p = preflightOf(path);
    check(p, `no CORS preflight seen for ${path}: ${show(seen)}`);
    const allowOrigin = p.responseHeaders?.['access-control-allow-origin'] ?? p.responseHeaders?.['Access-Control-Allow-Origin'];
    check(p.type === 'Preflight' && p.status >= 200 && p.status < 300 && allowOrigin === PAGE_ORIGIN,
      `the preflight of ${path} answered ${p.status} ${show(p.responseHeaders)}`);
  }
  ok(`B: both were CORS-preflighted (OPTIONS -> 2xx, Access-Control-Allow-Origin: ${PAGE_ORIGIN})`);
  await cdp.detach();

  // A page of an origin not in CORS_ORIGINS: the browser keeps every answer from it.
  const denied = await servePage(0, 'a page of an origin not allowed');
  const deniedOrigin = `http://127.0.0.1:${denied.address().port}`;
  try {
    const other = await context.newPage();
    watch(other, 'B denied');
    await other.goto(`${deniedOrigin}/`);
    const attempts = await other.evaluate(async ([base, token]) => {
      const attempt = async (url, init) => {
        try {
          const res = await fetch(url, init);
          return { status: res.status };
        } catch (e) {
          return { error: e.name, message: e.message };
        }
      };
      return {
        stream: await attempt(`${base}/api/conversations/run/stream`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Idempotency-Key': crypto.randomUUID() },
          body: JSON.stringify({ preset_id: 'default', input: [{ type: 'text', text: 'must not run' }] }),
        }),
        health: await attempt(`${base}/api/health`), // a simple request: sent, but unreadable
      };
    }, [BASE, TOKEN]);
    check(attempts.stream.error === 'TypeError' && attempts.health.error === 'TypeError',
      `a page of ${deniedOrigin} should not read the answers (TypeError): ${show(attempts)}`);
    ok(`B: a page of ${deniedOrigin} (not allowed) gets TypeError for run/stream and for /api/health`);
  } finally {
    denied.close();
  }
  await context.close();
}

// ------------------------------------------------------------------ main

const allowedPort = Number(new URL(PAGE_ORIGIN).port);
let browser;
let pageServer;
const guard = setTimeout(() => {
  console.error(`FAIL: the browser check did not finish within ${TIMEOUT_MS} ms`);
  for (const line of journal) console.error(`  ${line}`);
  process.exit(1);
}, TIMEOUT_MS);
try {
  pageServer = await servePage(allowedPort, 'a page of an allowed origin');
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  console.log(`Chromium ${browser.version()} (${CHROMIUM}), playwright-core; service ${BASE}, page origin ${PAGE_ORIGIN}`);
  await sameOrigin(browser);
  await crossOrigin(browser);
  console.log(`browser check passed (${passed} checks)`);
} catch (error) {
  console.error(`FAIL: ${error instanceof CheckError ? error.message : error?.stack ?? error}`);
  if (journal.length) {
    console.error('what the browser saw:');
    for (const line of journal) console.error(`  ${line}`);
  }
  process.exitCode = 1;
} finally {
  clearTimeout(guard);
  await browser?.close().catch(() => {});
  pageServer?.close();
}
