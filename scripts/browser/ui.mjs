// The web UI in a real Chromium (Debian's, driven by playwright-core) against a real
// service and the mock LLM (started by ui.sh): a user's paths through the page, each a named
// check printing `ok  <name>`.
//
// Settings from the environment:
//   BASE_URL              the service root (without /api)
//   TOKEN                 its AUTH_TOKEN (the checks sign in with it; setup uses it as a bearer)
//   MOCK_DELTAS           deltas of the mock's answer (default 60): the answer is "w0 w1 … w59 "
//   CHROMIUM              default /usr/bin/chromium
//   UI_SCREENSHOTS        where failure screenshots go (default /tmp/ui-screenshots)
//   UI_README_SCREENSHOT  1: when every check before it passed, also save a finished
//                         conversation's chat view (1280x800) to docs/ui-chat.png of this
//                         repository (UI_README_SCREENSHOT_FILE: elsewhere)
//   UI_SCREENSHOT_EVERY   1: a screenshot after every passed check as well, into UI_SCREENSHOTS
//   UI_TEST_TIMEOUT_MS    the whole run's bound (default 120000)
// One service and one browser for the whole suite; the presets the checks need are created
// through the API in setup. Exits 1 when a check failed (after running the independent
// ones), printing the failure, the pages' console and the failed requests.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

class CheckError extends Error {}

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (!value) {
    console.error(`ui.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const BASE = env('BASE_URL').replace(/\/+$/, '');
const TOKEN = env('TOKEN');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const SHOTS = env('UI_SCREENSHOTS', '/tmp/ui-screenshots');
const README_SHOT = process.env.UI_README_SCREENSHOT === '1';
const README_FILE = path.resolve(process.env.UI_README_SCREENSHOT_FILE || path.join(
  path.dirname(fileURLToPath(import.meta.url)), '../../docs/ui-chat.png'));
/** UI_SCREENSHOT_EVERY=1: a screenshot after every passed check too (for looking at the UI). */
const EVERY_SHOT = process.env.UI_SCREENSHOT_EVERY === '1';
const TIMEOUT_MS = Number(process.env.UI_TEST_TIMEOUT_MS ?? 120_000);
const DELTAS = Number(process.env.MOCK_DELTAS ?? 60);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The mock LLM's default answer: DELTAS words `w<i> `. */
const ANSWER = Array.from({ length: DELTAS }, (_, i) => `w${i} `).join('');
const LAST_WORD = `w${DELTAS - 1}`;
/** The tool the external-results check declares in its run request (the caller runs it). */
const EXTERNAL_TOOL = 'lookup_weather';

const started = Date.now();
const secs = () => ((Date.now() - started) / 1000).toFixed(1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function check(condition, what) {
  if (!condition) throw new CheckError(what);
}
const show = (v) => JSON.stringify(v);

// ------------------------------------------------------------------ what the browser did

const journal = [];
/** Console errors and page errors, except the API answers the checks provoke on purpose. */
const consoleErrors = [];
/**
 * Answers some checks provoke, which Chromium reports on the console as "Failed to load
 * resource": a wrong token (401), a preset the API refuses (422), deleting a preset in use
 * (409). Anything else on the console fails the suite (a signed-out start asks
 * GET /api/auth/session: no 401).
 */
const EXPECTED_STATUS = [
  { status: 401, path: /\/api\/auth\/session$/ },
  { status: 422, path: /\/api\/presets\/create$/ },
  { status: 409, path: /\/api\/presets\/pinned\/delete$/ },
];

function watch(page, label) {
  page.on('console', (m) => {
    journal.push(`[${label} console.${m.type()}] ${m.text()}`);
    if (m.type() !== 'error') return;
    const url = m.location()?.url || '';
    const status = Number(/status of (\d{3})/.exec(m.text())?.[1]);
    const expected = EXPECTED_STATUS.some((e) => e.status === status && e.path.test(new URL(url, BASE).pathname));
    if (!expected) consoleErrors.push(`[${label}] ${m.text()} ${url}`);
  });
  page.on('pageerror', (e) => {
    journal.push(`[${label} pageerror] ${e.message}`);
    consoleErrors.push(`[${label} pageerror] ${e.message}\n${e.stack || ''}`);
  });
  page.on('requestfailed', (r) => {
    const error = r.failure()?.errorText || '';
    // An EventSource the page closes, or a navigation away, aborts its request: not a failure.
    if (!/ERR_ABORTED/.test(error)) journal.push(`[${label} requestfailed] ${r.method()} ${r.url()}: ${error}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) journal.push(`[${label} response] ${r.request().method()} ${r.url()} -> ${r.status()}`);
  });
}

// ------------------------------------------------------------------ setup through the API

async function apiCall(method, pathname, body) {
  const res = await fetch(`${BASE}/api${pathname}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${pathname} -> ${res.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** The status of a bearer GET (for answers that are expected to fail, like a 404). */
async function apiStatus(pathname) {
  const res = await fetch(`${BASE}/api${pathname}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  await res.arrayBuffer();
  return res.status;
}

/** The ids of the presets the API marks `is_default` (exactly one, normally). */
const defaultPresets = async () =>
  (await apiCall('GET', '/presets/list')).presets.filter((p) => p.is_default).map((p) => p.preset_id);

async function setup() {
  const presets = [
    { preset_id: 'mock', name: 'Mock streamer', model: { name: 'openai:mock' }, is_default: true },
    { preset_id: 'echo', name: 'Echo', model: { name: 'test:echo' } },
    {
      preset_id: 'approver', name: 'Approver', model: { name: 'test:call:shell' },
      toolsets: [{ toolset_name: 'shell' }], tool_config: { require_approval: ['shell'] },
    },
    { preset_id: 'worker', name: 'Worker', model: { name: 'test:echo' } },
    {
      preset_id: 'lead', name: 'Lead', model: { name: 'test:call:async_delegate' },
      subagents: { async_enabled: true, refs: [{ preset_id: 'worker', name: 'worker', description: 'answers questions' }] },
    },
    {
      preset_id: 'delegator', name: 'Delegator', model: { name: 'test:call:delegate' },
      subagents: { refs: [{ preset_id: 'worker', name: 'worker', description: 'answers questions' }] },
    },
    // For the preset list: one becomes the default, one is deleted, one is kept in use.
    { preset_id: 'helper', name: 'Helper', model: { name: 'test:echo' } },
    { preset_id: 'spare', name: 'Spare', model: { name: 'test:echo' } },
    { preset_id: 'pinned', name: 'Pinned', model: { name: 'test:echo' } },
    // Calls the external tool a run declares (test:call:<tool> calls any tool by name).
    { preset_id: 'external', name: 'External caller', model: { name: `test:call:${EXTERNAL_TOOL}` } },
  ];
  for (const p of presets) await apiCall('POST', '/presets/create', p);
}

// ------------------------------------------------------------------ page helpers

/** Waits until fn() (run in the page) is truthy; returns its value. */
async function until(page, what, fn, arg, timeout = 15_000) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout, polling: 50 });
    return await handle.jsonValue();
  } catch (e) {
    throw new CheckError(`${what} (waited ${timeout} ms): ${String(e.message).split('\n')[0]}`);
  }
}

const conversationIdOf = (page) => /#\/conversations\/([^/]+)/.exec(page.url())?.[1];

/** The assistant text of the live turn ('' when none). */
const liveText = (page) => page.evaluate(() =>
  [...document.querySelectorAll('.turn.live .entry.assistant')].map((e) => e.textContent).join(''));

/** Waits for the run to end and its committed turn to replace the live block. */
async function waitCommitted(page, what, timeout = 20_000) {
  await until(page, `${what}: the run's committed turn, and the composer sends again`, () => {
    const live = document.querySelector('.turn.live');
    const turns = document.querySelectorAll('.chat-content .turn:not(.live)');
    const button = document.querySelector('.chat > .composer button[type=submit]')?.textContent.trim();
    return !live && turns.length > 0 && button === 'Send';
  }, undefined, timeout);
}

/** Starts a conversation on `presetId` with `text` from #/new. */
async function newConversation(page, presetId, text) {
  await page.goto(`${BASE}/#/new`);
  await page.waitForSelector('#preset-select option', { state: 'attached' });
  await page.selectOption('#preset-select', presetId);
  const box = page.locator('.composer textarea');
  await box.fill(text);
  await box.press('Enter');
  await until(page, 'the new conversation opens', () => /#\/conversations\//.test(location.hash));
  return conversationIdOf(page);
}

async function send(page, text) {
  const box = page.locator('.chat > .composer textarea');
  await box.fill(text);
  await box.press('Enter');
}

/** Every committed assistant text of the open conversation, in order. */
const committedTexts = (page) => page.evaluate(() =>
  [...document.querySelectorAll('.chat-content .turn:not(.live) .entry.assistant')].map((e) => e.textContent));

const noHorizontalScroll = (page) => page.evaluate(() => ({
  scrollWidth: document.documentElement.scrollWidth,
  bodyScrollWidth: document.body.scrollWidth,
}));

// ------------------------------------------------------------------ the checks

const results = [];
let failed = 0;

async function step(name, page, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push(name);
    if (EVERY_SHOT) {
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, `ok-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`), fullPage: true });
    }
    console.log(`ok  ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return true;
  } catch (error) {
    failed += 1;
    const file = path.join(SHOTS, `${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`);
    try {
      mkdirSync(SHOTS, { recursive: true });
      await page?.screenshot({ path: file, fullPage: true });
    } catch {
      // the page may be gone
    }
    console.log(`FAIL ${name}: ${error instanceof CheckError ? error.message : error.stack || error}`);
    console.log(`     screenshot: ${file}`);
    return false;
  }
}

async function main() {
  await setup();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const guard = setTimeout(async () => {
    console.log(`FAIL the suite took longer than ${TIMEOUT_MS} ms`);
    try {
      mkdirSync(SHOTS, { recursive: true });
      for (const [i, p] of browser.contexts().flatMap((c) => c.pages()).entries()) {
        await p.screenshot({ path: path.join(SHOTS, `timeout-${i}.png`) });
      }
    } catch {
      // best effort
    }
    dumpJournal();
    process.exit(1);
  }, TIMEOUT_MS);

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  watch(page, 'desktop');

  // 1. Sign in: a wrong token is refused on the page, the right one lands on the list.
  const signedIn = await step('sign in', page, async () => {
    await page.goto(`${BASE}/`);
    await page.waitForSelector('#token');
    check(page.url().endsWith('#/sign-in'), `without a cookie the page should be at #/sign-in: ${page.url()}`);
    await page.fill('#token', 'certainly-not-the-token');
    await page.click('.signin-card button[type=submit]');
    const error = await until(page, 'the wrong token is refused with a message',
      () => document.querySelector('#signin-error')?.textContent);
    check(/not the service/i.test(error), `the error should say the token is wrong: ${error}`);
    await page.fill('#token', TOKEN);
    await page.click('.signin-card button[type=submit]');
    await page.waitForSelector('.sidebar .new-button');
    await until(page, 'the list is the landing view', () => location.hash === '#/');
    const kept = await page.evaluate((token) => ({
      storage: localStorage.length + sessionStorage.length,
      cookieVisible: document.cookie.includes('session'),
      inUrl: location.href.includes(token),
    }), TOKEN);
    check(kept.storage === 0 && !kept.cookieVisible && !kept.inUrl,
      `nothing of the sign-in may be kept where scripts or URLs see it: ${show(kept)}`);
  });
  if (!signedIn) return finish(browser, guard);

  // The health indicator, with each backend and the version from the API document.
  await step('health and version', page, async () => {
    await until(page, 'the indicator says healthy', () =>
      document.querySelector('.health-button')?.textContent.includes('healthy'));
    await page.click('.health-button');
    const details = await until(page, 'the details list the backends and the version', () => {
      const text = document.querySelector('.health-details')?.textContent || '';
      return /Database\s*connected/.test(text) && /Version\s*\d+\.\d+/.test(text) ? text : null;
    });
    check(/Sandbox/.test(details) && /Event bus/.test(details), `health details: ${details}`);
    await page.click('.health-button');
  });

  // 2. A run streams: its text grows on the page while the mock sends deltas.
  let streamedConversation = null;
  await step('streamed run', page, async () => {
    await page.click('.sidebar .new-button');
    await page.waitForSelector('#preset-select option', { state: 'attached' });
    const chosen = await page.$eval('#preset-select', (s) => s.value);
    check(chosen === 'mock', `the default preset should be preselected, not ${chosen}`);
    const focused = await page.evaluate(() => document.activeElement?.tagName);
    check(focused === 'TEXTAREA', `the message field should have the focus, not ${focused}`);
    await page.keyboard.type('Stream test please');
    await page.keyboard.press('Enter');
    await until(page, 'the conversation opens', () => /#\/conversations\//.test(location.hash));
    streamedConversation = conversationIdOf(page);
    // Sample the live text: it must grow in several steps, each a prefix of the answer.
    const samples = [];
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const text = await liveText(page);
      if (text && samples.at(-1) !== text) samples.push(text);
      if (text.includes(LAST_WORD) || (samples.length && !(await page.$('.turn.live')))) break;
      await sleep(60);
    }
    check(samples.length >= 5, `the text should appear progressively, saw ${samples.length} states: ${show(samples.slice(0, 8))}`);
    for (const s of samples) check(ANSWER.startsWith(s.trimEnd()), `live text is not a prefix of the answer: ${show(s)}`);
    await waitCommitted(page, 'streamed run');
    const texts = await committedTexts(page);
    check(texts.length === 1 && texts[0].trim() === ANSWER.trim(), `the committed answer: ${show(texts)}`);
    await until(page, 'the list shows the title from the first line',
      (id) => document.querySelector(`.conversation-link[data-conversation="${id}"] .conversation-title`)?.textContent === 'Stream test please',
      streamedConversation);
  });

  // 3. Reload mid-run: the page re-attaches from the start; the answer appears once.
  await step('reload mid-run resumes without duplicates', page, async () => {
    check(streamedConversation, 'needs the streamed conversation');
    await page.goto(`${BASE}/#/conversations/${streamedConversation}`);
    await page.waitForSelector('.chat-content .turn');
    await send(page, 'Second message');
    await until(page, 'the second answer is streaming', () =>
      [...document.querySelectorAll('.turn.live .entry.assistant')].some((e) => e.textContent.includes('w10 ')));
    await page.reload();
    await until(page, 'after the reload the running turn is shown live', () => !!document.querySelector('.turn.live'));
    const seen = [];
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const text = await liveText(page);
      if (text && seen.at(-1) !== text) seen.push(text);
      if (!(await page.$('.turn.live'))) break;
      await sleep(50);
    }
    for (const s of seen) check(ANSWER.startsWith(s.trimEnd()), `after the reload the live text is not a prefix of the answer: ${show(s)}`);
    await waitCommitted(page, 'reloaded run');
    const texts = await committedTexts(page);
    check(texts.length === 2 && texts.every((t) => t.trim() === ANSWER.trim()),
      `two turns, each with the answer exactly once: ${show(texts)}`);
    const lastWords = await page.evaluate((w) =>
      document.querySelector('.chat-content').textContent.split(w).length - 1, LAST_WORD);
    check(lastWords === 2, `the answer's last word should appear twice on the page (two turns), not ${lastWords}`);
  });

  // 4. Steer: while the run goes, the composer steers it; the steering joins the transcript.
  await step('steer', page, async () => {
    check(streamedConversation, 'needs the streamed conversation');
    await send(page, 'Steer test');
    await until(page, 'the run is streaming', () =>
      [...document.querySelectorAll('.turn.live .entry.assistant')].some((e) => e.textContent.includes('w3 ')));
    const label = await page.textContent('.chat > .composer button[type=submit]');
    check(/steer/i.test(label), `while running the composer should steer: ${label}`);
    await send(page, 'please steer this way');
    await until(page, 'the steering shows in the live turn', () =>
      [...document.querySelectorAll('.turn.live .entry.user, .turn.live .queued-steers li')]
        .some((e) => e.textContent.includes('please steer this way')));
    await waitCommitted(page, 'steered run', 25_000);
    const users = await page.evaluate(() =>
      [...document.querySelectorAll('.chat-content .turn:not(.live)')].at(-1)
        .querySelectorAll('.entry.user').length);
    const steered = await page.evaluate(() =>
      [...document.querySelectorAll('.chat-content .turn:not(.live)')].at(-1).textContent.includes('please steer this way'));
    check(steered && users === 2, `the committed turn should hold the message and the steering (${users} user entries)`);
  });

  // 5. Interrupt: the run stops early and says so.
  await step('interrupt', page, async () => {
    check(streamedConversation, 'needs the streamed conversation');
    await send(page, 'Interrupt test');
    await until(page, 'the run is streaming', () =>
      [...document.querySelectorAll('.turn.live .entry.assistant')].some((e) => e.textContent.includes('w3 ')));
    await page.click('.chat > .composer button.danger');
    await until(page, 'the turn says it was interrupted', () =>
      [...document.querySelectorAll('.chat-content .turn')].at(-1)?.textContent.includes('interrupted'));
    await waitCommitted(page, 'interrupted run');
    const last = await page.evaluate(() => {
      const turn = [...document.querySelectorAll('.chat-content .turn:not(.live)')].at(-1);
      return { text: turn.querySelector('.entry.assistant')?.textContent || '', head: turn.querySelector('.turn-head').textContent };
    });
    check(/interrupted/.test(last.head), `the committed turn should be marked interrupted: ${last.head}`);
    check(last.text.length < ANSWER.trim().length && ANSWER.startsWith(last.text.trim()),
      `the interrupted answer should be a part of the answer: ${show(last.text)}`);
    const label = await page.textContent('.chat > .composer button[type=submit]');
    check(/send/i.test(label), `after the run the composer sends again: ${label}`);
  });

  // 6. Approvals: a call waiting for approval is approved, then another one denied.
  let approvalConversation = null;
  await step('approve and deny pending calls', page, async () => {
    approvalConversation = await newConversation(page, 'approver', '{"command":"echo approved-run"}');
    await page.waitForSelector('.approvals .pending-call', { timeout: 15_000 });
    const tool = await page.textContent('.approvals .pending-call .tool-name');
    check(tool === 'shell', `the pending call should be the shell's: ${tool}`);
    await page.click('.approvals button:has-text("Approve")');
    await until(page, 'the approved call ran', () => {
      const calls = [...document.querySelectorAll('.chat-content .turn:not(.live) .entry.tool-call')];
      return !document.querySelector('.turn.live') && !document.querySelector('.approvals') &&
        document.querySelector('.chat-content').textContent.includes('shell: ') && calls.length > 0;
    }, undefined, 20_000);
    const result = await page.evaluate(() => document.querySelector('.chat-content').textContent);
    check(result.includes('approved-run'), 'the approved command\'s output should be in the transcript');

    await send(page, '{"command":"echo denied-run"}');
    await page.waitForSelector('.approvals .pending-call', { timeout: 15_000 });
    await page.fill('.approvals .reason input', 'not today');
    await page.click('.approvals button:has-text("Deny")');
    await until(page, 'the denied run finished', () =>
      !document.querySelector('.turn.live') && !document.querySelector('.approvals') &&
      [...document.querySelectorAll('.chat-content .turn:not(.live)')].length >= 4, undefined, 20_000);
    const denied = await page.evaluate(() => {
      const turn = [...document.querySelectorAll('.chat-content .turn:not(.live)')].at(-1);
      return turn.textContent;
    });
    check(/not today/.test(denied), `the denial's reason should reach the transcript: ${denied.slice(0, 400)}`);
    check(!/denied-run\n/.test(denied) && !/^denied-run$/m.test(denied), 'a denied command must not run');
  });

  // External tools: a run declares a tool the caller executes; the model's call to it ends
  // the run waiting for the result, which the page sends back in a continuation run.
  await step('external tool result', page, async () => {
    const started = await apiCall('POST', '/conversations/run/wait', {
      preset_id: 'external',
      input: [{ type: 'text', text: '{"city":"Oslo"}' }],
      external_tools: [{
        name: EXTERNAL_TOOL, description: 'The weather in a city, looked up by the caller.',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      }],
    });
    const call = started.pending_tool_calls?.[0];
    check(started.status === 'awaiting_tool_results' && call?.kind === 'external' && call.tool_name === EXTERNAL_TOOL,
      `the run should wait for the external call: ${show(started)}`);
    await page.goto(`${BASE}/#/conversations/${started.conversation_id}`);
    const pending = `.approvals .pending-call[data-tool-call="${call.tool_call_id}"]`;
    await page.waitForSelector(pending);
    const shown = await page.$eval(pending, (li) => ({
      tool: li.querySelector('.tool-name')?.textContent,
      kind: li.querySelector('.pending-head .badge')?.textContent,
      args: li.textContent,
      head: document.querySelector('.chat-content .turn:not(.live) .turn-head')?.textContent || '',
    }));
    check(shown.tool === EXTERNAL_TOOL && /external tool/.test(shown.kind), `the pending call: ${show(shown)}`);
    check(/"city":\s*"Oslo"/.test(shown.args), `the call's arguments should show: ${show(shown.args)}`);
    check(/waiting for you/.test(shown.head), `the turn should say it waits: ${show(shown.head)}`);
    const result = 'sunny and 21 degrees in Oslo';
    await page.fill(`${pending} .external-result textarea`, result);
    const sent = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/api/conversations/run'));
    await page.click(`${pending} button:has-text("Send result")`);
    const body = (await sent).postDataJSON();
    check(body.conversation_id === started.conversation_id && !body.input && !body.user_interactions?.length &&
      show(body.tool_results) === show([{ tool_call_id: call.tool_call_id, output: result }]),
      `the continuation should carry the result, and nothing else: ${show(body)}`);
    const answer = await until(page, 'the run continues and answers with the result', (want) => {
      const turns = [...document.querySelectorAll('.chat-content .turn:not(.live)')];
      const text = turns.at(-1)?.querySelector('.entry.assistant')?.textContent || '';
      return !document.querySelector('.turn.live') && !document.querySelector('.approvals') &&
        turns.length === 2 && text.includes(want) ? text : null;
    }, `${EXTERNAL_TOOL}: ${result}`, 20_000);
    check(answer.trim() === `${EXTERNAL_TOOL}: ${result}`, `the answer: ${show(answer)}`);
    const first = await page.evaluate(() => document.querySelector('.chat-content .turn:not(.live) .turn-head').textContent);
    check(/paused for tool results/.test(first) && !/waiting for you/.test(first),
      `the first turn should now say what it paused for: ${show(first)}`);
    const turns = await apiCall('GET', `/conversations/${started.conversation_id}/turns?session_type=agent`);
    check(turns.turns.at(-1)?.status === 'committed', `the last turn as stored: ${show(turns.turns.at(-1))}`);
  });

  // 7. Mailbox: an async subagent's outcome waits, opens in place, and is fired.
  await step('mailbox fire', page, async () => {
    await newConversation(page, 'lead', '{"subagent":"worker","task":"find the docs"}');
    await waitCommitted(page, 'dispatching run');
    await page.waitForSelector('.mailbox .mailbox-message[data-delivered="no"]', { timeout: 15_000 });
    await page.click('.mailbox .session-inline > summary');
    await until(page, 'the subagent\'s session opens in place', () =>
      document.querySelector('.mailbox .session-inline-body')?.textContent.includes('echo: find the docs'));
    await page.fill('#fire-input', 'Summarize.');
    await page.click('.mailbox .fire button[type=submit]');
    await until(page, 'the fired run ends and the outcome is delivered', () =>
      !document.querySelector('.turn.live') &&
      document.querySelector('.mailbox .mailbox-message')?.dataset.delivered === 'yes' &&
      document.querySelectorAll('.chat-content .turn:not(.live)').length >= 2, undefined, 20_000);
  });

  // 8. Fork from an earlier turn: a new conversation with the shared history; two branches.
  await step('fork from an earlier turn', page, async () => {
    const original = await newConversation(page, 'echo', 'first message');
    await waitCommitted(page, 'first turn');
    await send(page, 'second message');
    await until(page, 'two turns', () =>
      !document.querySelector('.turn.live') && document.querySelectorAll('.chat-content .turn:not(.live)').length === 2);
    await page.click('.chat-content .turn >> nth=0 >> button.fork-button');
    const box = page.locator('.fork-form textarea');
    await box.fill('forked message');
    await box.press('Enter');
    await until(page, 'the fork opens', (id) => /#\/conversations\//.test(location.hash) && !location.hash.includes(id), original);
    await until(page, 'the fork answers after the shared turn', () => {
      const text = document.querySelector('.chat-content')?.textContent || '';
      return !document.querySelector('.turn.live') && text.includes('echo: forked message') &&
        text.includes('echo: first message') && !text.includes('echo: second message');
    }, undefined, 15_000);
    await page.click('.branches > summary');
    const branches = await until(page, 'the branch list shows both branches', () => {
      const items = document.querySelectorAll('.branches .branch');
      return items.length === 2 ? [...items].map((i) => i.textContent.replace(/\s+/g, ' ').trim()) : null;
    });
    check(branches.some((b) => /forked at turn 1/.test(b)), `one branch should be the fork at turn 1: ${show(branches)}`);
  });

  // Model output is hostile: raw HTML stays text, remote images become links, script links
  // lose their target, code is highlighted (test:echo repeats the message as its answer).
  await step('hostile markdown is defused', page, async () => {
    const message = [
      'Look: ![pixel](http://192.0.2.1/track.png?c=secret) <img src="http://192.0.2.1/x.png" onerror="alert(1)">',
      '[click me](javascript:alert(1)) and [docs](https://example.com/docs)',
      '',
      '```rust',
      'fn main() { let x = 1; }',
      '```',
    ].join('\n');
    await newConversation(page, 'echo', message);
    await waitCommitted(page, 'echo of the markdown');
    const found = await page.evaluate(() => {
      const answer = document.querySelector('.chat-content .turn:not(.live) .entry.assistant .md');
      return {
        images: [...answer.querySelectorAll('img')].map((i) => i.getAttribute('src')),
        links: [...answer.querySelectorAll('a')].map((a) => ({ href: a.getAttribute('href'), rel: a.rel, target: a.target, text: a.textContent })),
        handlers: [...answer.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
        text: answer.textContent,
        keywords: answer.querySelectorAll('pre code .hljs-keyword').length,
      };
    });
    check(found.images.length === 0, `no remote image may load: ${show(found.images)}`);
    check(found.handlers === 0, 'no element may carry an event handler');
    check(found.text.includes('<img src="http://192.0.2.1/x.png"'), `raw HTML should show as text: ${found.text}`);
    const pixel = found.links.find((l) => l.text.includes('pixel'));
    check(pixel && pixel.href.startsWith('http://192.0.2.1/'), `the remote image should be a plain link: ${show(found.links)}`);
    const script = found.links.find((l) => l.text === 'click me');
    check(script && !script.href, `a javascript: link must lose its target: ${show(script)}`);
    const docs = found.links.find((l) => l.text === 'docs');
    check(docs && docs.target === '_blank' && /noopener/.test(docs.rel) && /noreferrer/.test(docs.rel),
      `links open in a new tab without opener or referrer: ${show(docs)}`);
    check(found.keywords > 0, 'the rust code block should be highlighted');
  });

  // Attachments go as binary input parts and show as chips until sent.
  await step('attachments', page, async () => {
    await page.goto(`${BASE}/#/new`);
    await page.waitForSelector('#preset-select option', { state: 'attached' });
    await page.selectOption('#preset-select', 'echo');
    await page.setInputFiles('.composer input[type=file]', {
      name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('attached words\n'),
    });
    await until(page, 'the file shows as a chip', () =>
      document.querySelector('.composer .chip-name')?.textContent === 'notes.txt');
    const sent = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/api/conversations/run'));
    const box = page.locator('.composer textarea');
    await box.fill('see the attachment');
    await box.press('Enter');
    const body = (await sent).postDataJSON();
    const part = body.input.find((p) => p.type === 'binary');
    check(part && part.name === 'notes.txt' && part.mime_type === 'text/plain' &&
      Buffer.from(part.data, 'base64').toString() === 'attached words\n', `the binary part: ${show(body.input)}`);
    await waitCommitted(page, 'run with an attachment');
    const chips = await page.$$('.composer .chip');
    check(chips.length === 0, 'the chips are cleared once sent');
  });

  // A sync subagent's entries nest inside its block.
  await step('subagent block', page, async () => {
    await newConversation(page, 'delegator', '{"subagent":"worker","task":"nested task"}');
    await waitCommitted(page, 'delegating run');
    const block = await until(page, 'the subagent block holds its own answer', () => {
      const sub = document.querySelector('.chat-content .turn:not(.live) .entry.subagent');
      const inner = sub?.querySelector('.subagent-body .entry.assistant')?.textContent;
      return inner ? { inner, summary: sub.querySelector('summary').textContent } : null;
    });
    check(/echo: nested task/.test(block.inner) && /worker/.test(block.summary), `the subagent block: ${show(block)}`);
  });

  // Rename, search, archive and back.
  await step('rename, search and archive', page, async () => {
    const id = await newConversation(page, 'echo', 'to be renamed');
    await waitCommitted(page, 'first turn');
    await page.click('.chat-header button:has-text("Rename")');
    await page.fill('#rename-input', 'Renamed by the test');
    await page.press('#rename-input', 'Enter');
    const link = `.conversation-link[data-conversation="${id}"]`;
    await until(page, 'the list shows the new title', (sel) =>
      document.querySelector(sel)?.textContent.includes('Renamed by the test'), link);
    await page.fill('#conversation-search', 'renamed by');
    await until(page, 'the search keeps only matching titles', () =>
      [...document.querySelectorAll('.conversation-link')].every((a) => /renamed by/i.test(a.textContent)) &&
      document.querySelectorAll('.conversation-link').length === 1);
    await page.fill('#conversation-search', '');
    await page.click('.chat-header button:has-text("Archive")');
    await until(page, 'it leaves the active list', (sel) => !document.querySelector(sel), link);
    await page.click('.segmented button:has-text("Archived")');
    await until(page, 'the archived list has it', (sel) => !!document.querySelector(sel), link);
    await page.click('.chat-header button:has-text("Unarchive")');
    await until(page, 'unarchived, it leaves the archived list', (sel) => !document.querySelector(sel), link);
    await page.click('.segmented button:has-text("Active")');
    await until(page, 'and is active again', (sel) => !!document.querySelector(sel), link);
  });

  // 9. A preset the API refuses: each message on its field.
  await step('preset validation errors', page, async () => {
    await page.goto(`${BASE}/#/new-preset`);
    await page.waitForSelector('#preset-id');
    await page.fill('#preset-id', 'ui-made');
    await page.fill('#preset-name', '');
    await page.fill('#preset-model', 'nosuchprovider:model');
    await page.click('.preset-editor button[type=submit]');
    const errors = await until(page, 'the field errors show', () => {
      const name = document.querySelector('#name-error')?.textContent;
      const model = document.querySelector('#model-error')?.textContent;
      return name && model ? { name, model } : null;
    });
    check(/empty/.test(errors.name), `the name's error: ${errors.name}`);
    check(/provider/i.test(errors.model), `the model's error: ${errors.model}`);
    check(await page.$eval('#preset-name', (e) => e.getAttribute('aria-invalid')) === 'true', 'the name field is marked invalid');
    await page.fill('#preset-name', 'Made in the UI');
    await page.fill('#preset-model', 'test:echo');
    await page.check('input[name="toolset-core"]');
    await page.click('.preset-editor button[type=submit]');
    await until(page, 'the created preset opens', () => location.hash === '#/presets/ui-made');
    const saved = await apiCall('GET', '/presets/ui-made/get');
    check(saved.name === 'Made in the UI' && saved.toolsets.some((t) => t.toolset_name === 'core'),
      `the preset as stored: ${show(saved)}`);
  });

  // The preset list: make another preset the default (and back), delete an unused one, and
  // fail to delete one an active conversation uses, with the API's reason on the page.
  await step('presets: default and delete', page, async () => {
    const item = (id) => page.locator(`.preset-item[data-preset="${id}"]`);
    /** The ids of the list's items with a "default" badge. */
    const badges = () => page.evaluate(() => [...document.querySelectorAll('.preset-item')]
      .filter((li) => [...li.querySelectorAll('.badge')].some((b) => b.textContent.trim() === 'default'))
      .map((li) => li.dataset.preset));
    const markedOnly = async (id) => {
      let ids = [];
      for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(50)) {
        ids = await badges();
        if (show(ids) === show([id])) return;
      }
      throw new CheckError(`the list should mark ${id}, and only it, as the default: ${show(ids)}`);
    };
    try {
      await page.goto(`${BASE}/#/presets`);
      await item('helper').waitFor();
      check(show(await defaultPresets()) === show(['mock']), `before: the default should be mock: ${show(await defaultPresets())}`);
      await item('helper').getByRole('button', { name: 'Make default', exact: true }).click();
      await markedOnly('helper');
      check(await item('helper').getByRole('button', { name: 'Make default' }).count() === 0,
        'the default preset offers no "Make default"');
      check(show(await defaultPresets()) === show(['helper']), `the API's default: ${show(await defaultPresets())}`);
      await page.goto(`${BASE}/#/new`);
      await page.waitForSelector('#preset-select option', { state: 'attached' });
      const picked = await until(page, 'the picker preselects the new default', () => {
        const select = document.querySelector('#preset-select');
        return select.value ? { value: select.value, label: select.selectedOptions[0]?.textContent.trim() } : null;
      });
      check(picked.value === 'helper' && /Helper.*· default/.test(picked.label), `the picker: ${show(picked)}`);

      await page.goto(`${BASE}/#/presets`);
      await item('mock').getByRole('button', { name: 'Make default', exact: true }).click();
      await markedOnly('mock');
      check(show(await defaultPresets()) === show(['mock']), `the default restored: ${show(await defaultPresets())}`);

      // A preset an active conversation uses is refused with 409 preset_in_use: the reason shows.
      await apiCall('POST', '/conversations/run/wait', { preset_id: 'pinned', input: [{ type: 'text', text: 'keep pinned in use' }] });
      await item('pinned').getByRole('button', { name: 'Delete', exact: true }).click();
      await item('pinned').getByRole('button', { name: 'Really delete', exact: true }).click();
      const refused = await until(page, 'the refusal is explained on the page', () =>
        document.querySelector('.presets .form-error[role=alert]')?.textContent);
      check(/^Pinned cannot be deleted: .*in use by an active conversation/.test(refused), `the explanation: ${show(refused)}`);
      check(await item('pinned').count() === 1, 'the refused preset stays in the list');
      check(await apiStatus('/presets/pinned/get') === 200, 'and in the API');
      check(show(await badges()) === show(['mock']), `the default is untouched: ${show(await badges())}`);

      // Deleting asks first; an unused preset then goes (and the refusal above is gone).
      await item('spare').getByRole('button', { name: 'Delete', exact: true }).click();
      check(await apiStatus('/presets/spare/get') === 200, 'one click only asks: nothing is deleted yet');
      await item('spare').getByRole('button', { name: 'Really delete', exact: true }).click();
      await until(page, 'the deleted preset leaves the list', () =>
        !document.querySelector('.preset-item[data-preset="spare"]') &&
        [...document.querySelectorAll('.toast')].some((t) => t.textContent.includes('Deleted Spare.')));
      check(await page.locator('.presets .form-error').count() === 0, 'the earlier refusal should not outlive a success');
      check(await apiStatus('/presets/spare/get') === 404, 'the API should no longer have the deleted preset');
      const ids = (await apiCall('GET', '/presets/list')).presets.map((p) => p.preset_id);
      check(!ids.includes('spare') && ids.includes('pinned'), `the API's list after the delete: ${show(ids)}`);
    } finally {
      // Later checks start conversations on the default preset: put it back whatever happened.
      if (show(await defaultPresets().catch(() => [])) !== show(['mock'])) {
        await apiCall('POST', '/presets/mock/update', { is_default: true }).catch(() => {});
      }
    }
  });

  // 10. A phone: 360 px wide, no horizontal scrolling on any view.
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, storageState: await context.storageState() });
  const small = await phone.newPage();
  watch(small, 'phone');
  await step('phone width 360 px', small, async () => {
    const views = [
      ['#/', '.sidebar .new-button'],
      ['#/new', '#preset-select'],
      [`#/conversations/${streamedConversation}`, '.chat-content .turn'],
      ['#/presets', '.preset-item'],
      ['#/new-preset', '#preset-id'],
    ];
    for (const [hash, ready] of views) {
      await small.goto(`${BASE}/${hash}`);
      await small.waitForSelector(ready);
      await small.evaluate(() => document.querySelectorAll('details').forEach((d) => { d.open = true; }));
      await sleep(100);
      const width = await noHorizontalScroll(small);
      check(width.scrollWidth <= 360 && width.bodyScrollWidth <= 360, `${hash} scrolls sideways: ${show(width)}`);
    }
  });

  // The README's picture: a finished conversation with tool calls, approved and denied.
  if (README_SHOT && failed === 0 && approvalConversation) {
    await page.goto(`${BASE}/#/conversations/${approvalConversation}`);
    await page.waitForSelector('.chat-content .turn');
    await page.evaluate(() => {
      document.querySelectorAll('.toast button').forEach((b) => b.click());
      [...document.querySelectorAll('.chat-content .entry.tool-call')].at(-1)?.setAttribute('open', '');
    });
    await sleep(200);
    await page.evaluate(() => {
      const scroller = document.querySelector('.chat-scroll');
      scroller.scrollTop = scroller.scrollHeight;
    });
    await sleep(200);
    mkdirSync(path.dirname(README_FILE), { recursive: true });
    await page.screenshot({ path: README_FILE });
    console.log(`    saved ${path.relative(ROOT, README_FILE)}`);
  }

  // Signing out ends the cookie's session: the next visit lands on sign-in again.
  await step('sign out', page, async () => {
    await page.goto(`${BASE}/#/presets`);
    await page.waitForSelector('.preset-item');
    await page.click('.topbar .signout');
    await page.waitForSelector('#token');
    await page.goto(`${BASE}/#/presets`);
    await page.reload();
    await page.waitForSelector('#token');
    check(page.url().endsWith('#/sign-in'), `signed out, the page should ask for the token: ${page.url()}`);
  });

  // 11. Nothing went wrong in any page.
  await step('no console errors', page, async () => {
    check(consoleErrors.length === 0, `console errors:\n${consoleErrors.join('\n')}`);
  });

  return finish(browser, guard);
}

function dumpJournal() {
  console.log('-- the pages\' console and failed requests (last 60):');
  for (const line of journal.slice(-60)) console.log(`   ${line}`);
}

async function finish(browser, guard) {
  clearTimeout(guard);
  await browser.close().catch(() => {});
  if (failed) {
    dumpJournal();
    console.log(`${failed} check(s) failed, ${results.length} passed (${secs()} s)`);
    process.exit(1);
  }
  console.log(`all ${results.length} UI checks passed in ${secs()} s`);
}

main().catch((e) => {
  console.log(`FAIL ${e.stack || e}`);
  dumpJournal();
  process.exit(1);
});
