// The TypeScript client generated from openapi/openapi.json (by @hey-api/openapi-ts, into
// ./client) drives a running agent-runtime: BASE_URL (the service root, without /api) and
// TOKEN (its AUTH_TOKEN) come from the environment. Every call goes through a generated SDK
// function. Exits 1 with a message on the first failed check (2 on missing settings).
//
// The flows, one function each: a 202 run attached to and resumed with Last-Event-ID,
// run/stream, run/wait, a retried run (same Idempotency-Key: the same run; another body:
// 409), steer and interrupt. Every run call sends an `Idempotency-Key`, as a client that
// retries should.

import { randomUUID } from 'node:crypto';

import {
  type ApiError,
  conversationsInterrupt,
  conversationsRun,
  conversationsRunStream,
  conversationsRunWait,
  conversationsSteer,
  type InputPart,
  presetsCreate,
  type RunAccepted,
  type RunEvent,
  type RunRequest,
  sessionsEvents,
  sessionsStatus,
  type SteerRequest,
  type Toolset,
} from './client/index.js';
import { client } from './client/client.gen.js';

// ------------------------------------------------------------------ setup and checks

class FlowError extends Error {}

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new FlowError(what);
}

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new FlowError(`${name} is not set`);
  return value;
}

function configure(): void {
  const base = env('BASE_URL').replace(/\/+$/, '');
  client.setConfig({ baseUrl: `${base}/api`, auth: env('TOKEN') });
}

const suffix = randomUUID().slice(0, 8);
const idempotencyKey = (): string => randomUUID();
const text = (value: string): InputPart[] => [{ type: 'text', text: value }];
const show = (value: unknown): string => JSON.stringify(value);
const types = (events: RunEvent[]): string => events.map((e) => e.event_type).join(',');

/** An error answer of the generated client, for messages. */
function failure(what: string, response: Response | undefined, error: unknown): string {
  if (error instanceof Error) {
    // No HTTP answer (connection refused, reset, ...): the client hands back the fetch error.
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
    return `${what}: no HTTP answer: ${error.message}${cause}`;
  }
  return `${what}: HTTP ${response?.status ?? '-'} ${show(error as ApiError | undefined)}`;
}

// ------------------------------------------------------------------ operations

async function createPreset(presetId: string, model: string, toolsets?: Toolset[]): Promise<void> {
  const { data, error, response } = await presetsCreate({
    body: { preset_id: presetId, name: `TS ${presetId}`, model: { name: model }, toolsets },
  });
  check(data, failure('presets_create', response, error));
  check(data.preset_id === presetId, `presets_create echoed ${data.preset_id}, not ${presetId}`);
  check(data.model.name === model, `presets_create kept model ${data.model.name}`);
}

/** Starts a run (conversations_run) and answers its 202 RunAccepted. */
async function startRun(body: RunRequest, key: string = idempotencyKey()): Promise<RunAccepted> {
  const { data, error, response } = await conversationsRun({
    body,
    headers: { 'Idempotency-Key': key },
  });
  check(data, failure('conversations_run', response, error));
  check(response?.status === 202, `conversations_run answered ${response?.status}, not 202`);
  return data;
}

/** The body of the steer operations: text parts, and a client message id. */
function steerBody(command: string, messageId: string): SteerRequest {
  return { input: text(command), message_id: messageId };
}

/**
 * The session's events through the SDK's SSE function, from the start or after
 * `lastEventId` (sent as the `Last-Event-ID` header). `until` stops reading early (the
 * connection is aborted); `during` runs on each event while the stream is open; `status`
 * gets the HTTP status. A 204 (the cursor is the terminal event) gives no events.
 */
async function readEvents(
  sessionId: string,
  options: {
    lastEventId?: number;
    until?: (event: RunEvent) => boolean;
    during?: (event: RunEvent) => Promise<void>;
    timeoutMs?: number;
    status?: (code: number) => void;
  } = {},
): Promise<RunEvent[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs ?? 30_000);
  let streamError: unknown;
  let httpStatus = 0;
  let stoppedEarly = false;
  const events: RunEvent[] = [];
  try {
    const { stream } = await sessionsEvents({
      path: { session_id: sessionId },
      headers: options.lastEventId === undefined ? undefined : { 'Last-Event-ID': options.lastEventId },
      signal: abort.signal,
      // The generated SSE reader retries forever by default (also on 4xx); one attempt
      // here, and its error (only "SSE failed: <status>", not the ApiError body) kept.
      sseMaxRetryAttempts: 1,
      onSseError: (error) => {
        streamError = error;
      },
      // Only observes the status: the SSE reader does not expose it, and reports a 204
      // (no body) as the error "No body in SSE response".
      fetch: async (request) => {
        const response = await fetch(request);
        httpStatus = response.status;
        return response;
      },
    });
    for await (const data of stream) {
      // Typed by the SDK as RunEvent | void (void: the 204 answer, which yields no events).
      check(data, 'sessions_events yielded an empty event');
      events.push(data);
      if (options.during) await options.during(data);
      if (options.until?.(data)) {
        stoppedEarly = true;
        break;
      }
    }
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  options.status?.(httpStatus);
  if (httpStatus === 204) {
    check(events.length === 0, `sessions_events answered 204 with ${events.length} events`);
    return events;
  }
  if (streamError !== undefined && !stoppedEarly) {
    throw new FlowError(`sessions_events ${sessionId}: ${String(streamError)}`);
  }
  return events;
}

function checkRunEnd(events: RunEvent[], stopReason: string, what: string): void {
  const last = events.at(-1);
  check(last, `${what}: no events`);
  check(last.event_type === 'run_completed', `${what}: ends with ${last.event_type}: ${types(events)}`);
  check(last.payload.status === 'committed', `${what}: status ${last.payload.status}`);
  check(
    last.payload.stop_reason === stopReason,
    `${what}: stop_reason ${last.payload.stop_reason}, expected ${stopReason}`,
  );
  const terminal = events.filter((e) => e.event_type === 'run_completed' || e.event_type === 'run_failed');
  check(terminal.length === 1, `${what}: ${terminal.length} terminal events: ${types(events)}`);
  events.forEach((e, i) => {
    check(e.event_id === events[0]!.event_id + i, `${what}: event ids not consecutive at ${i}: ${e.event_id}`);
  });
}

function finalText(events: RunEvent[]): string {
  const done = events.filter((e) => e.event_type === 'content_done');
  const last = done.at(-1);
  return last && last.event_type === 'content_done' ? last.payload.text : '';
}

// ------------------------------------------------------------------ flows

/** A run started with the 202 variant, its events read whole, then resumed from the middle. */
async function flowRunAndResume(): Promise<string> {
  const preset = `ts-echo-${suffix}`;
  await createPreset(preset, 'test:echo');
  const run = await startRun({ preset_id: preset, input: text('hello from typescript') });

  const all = await readEvents(run.session_id);
  checkRunEnd(all, 'completed', 'whole stream');
  check(all[0]!.event_id === 1, `the stream starts at event ${all[0]!.event_id}`);
  check(all[0]!.event_type === 'run_started', `first event ${all[0]!.event_type}`);
  const said = finalText(all);
  check(said === 'echo: hello from typescript', `the echo said ${show(said)}`);

  // Read up to the middle, drop the connection, then resume with Last-Event-ID.
  const middle = Math.floor(all.length / 2);
  const head = await readEvents(run.session_id, { until: (e) => e.event_id >= middle });
  check(head.length === middle, `read ${head.length} events before the cut, expected ${middle}`);
  const tail = await readEvents(run.session_id, { lastEventId: head.at(-1)!.event_id });
  check(tail[0]?.event_id === middle + 1, `resumed at event ${tail[0]?.event_id}, expected ${middle + 1}`);
  checkRunEnd([...head, ...tail], 'completed', 'resumed stream');
  check(show([...head, ...tail]) === show(all), 'the resumed stream differs from the whole one');

  // Resuming after the terminal event: 204, nothing more will come.
  let status = 0;
  const after = await readEvents(run.session_id, {
    lastEventId: all.at(-1)!.event_id,
    status: (code) => (status = code),
  });
  check(status === 204 && after.length === 0, `after the terminal event: HTTP ${status}, ${after.length} events`);
  return `${all.length} events, resumed after event ${middle}: ${types(tail)}; after the end: 204`;
}

/** Steer a running run: the steer is injected after the tool turn and the model acts on it. */
async function flowSteer(): Promise<string> {
  const preset = `ts-shell-${suffix}`;
  await createPreset(preset, 'test:call:shell', [{ toolset_name: 'shell' }]);
  // test:call:shell runs the last user text as the shell call's arguments: the first call
  // sleeps; the steer (injected as the next user message) makes it call `echo`.
  const run = await startRun({ preset_id: preset, input: text(show({ command: 'sleep 2' })) });
  const messageId = `steer-${suffix}`;
  const steerCommand = show({ command: 'echo steered-by-ts' });
  let steered = false;
  const events = await readEvents(run.session_id, {
    during: async (event) => {
      if (event.event_type !== 'tool_call_start' || steered) return;
      steered = true;
      for (const queued of [true, false]) {
        const { data, error, response } = await conversationsSteer({
          path: { conversation_id: run.conversation_id },
          body: steerBody(steerCommand, messageId),
        });
        check(data, failure('conversations_steer', response, error));
        check(data.session_id === run.session_id, `steer went to ${data.session_id}`);
        check(data.queued === queued, `steer ${messageId} queued=${data.queued}, expected ${queued}`);
      }
    },
  });
  check(steered, `no tool call to steer during: ${types(events)}`);
  checkRunEnd(events, 'completed', 'steered run');
  const injected = events.filter((e) => e.event_type === 'steering_injected');
  check(injected.length === 1, `${injected.length} steering_injected events: ${types(events)}`);
  const [steer] = injected;
  check(steer?.event_type === 'steering_injected', 'steering_injected');
  check(steer.payload.message_id === messageId && steer.payload.text === steerCommand, `steer payload ${show(steer.payload)}`);
  const firstToolEnd = events.findIndex((e) => e.event_type === 'tool_call_end');
  check(firstToolEnd >= 0 && firstToolEnd < events.indexOf(steer), `injected before the tool turn ended: ${types(events)}`);
  check(finalText(events).includes('steered-by-ts'), `the model did not act on the steer: ${show(finalText(events))}`);

  // Nothing runs any more: steering is refused with a typed ApiError.
  const { data, error, response } = await conversationsSteer({
    path: { conversation_id: run.conversation_id },
    body: steerBody(steerCommand, `late-${suffix}`),
  });
  check(!data && response?.status === 404 && error?.error === 'not_found', failure('late steer (expected 404 not_found)', response, error));
  return `steer queued once, injected as event ${steer.event_id}, final text ${show(finalText(events))}`;
}

/** Interrupt a running run: the shell command dies and the run commits as interrupted. */
async function flowInterrupt(): Promise<string> {
  const preset = `ts-sleep-${suffix}`;
  await createPreset(preset, 'test:call:shell', [{ toolset_name: 'shell' }]);
  const started = Date.now();
  const run = await startRun({ preset_id: preset, input: text(show({ command: 'sleep 30' })) });
  let interrupted = false;
  const events = await readEvents(run.session_id, {
    during: async (event) => {
      if (event.event_type !== 'tool_call_start' || interrupted) return;
      interrupted = true;
      const { data, error, response } = await conversationsInterrupt({
        path: { conversation_id: run.conversation_id },
        query: { reason: 'ts-client flow' },
      });
      check(data, failure('conversations_interrupt', response, error));
      check(data.interrupted.includes(run.session_id), `interrupt listed ${show(data.interrupted)}`);
    },
  });
  check(interrupted, `no tool call to interrupt during: ${types(events)}`);
  checkRunEnd(events, 'interrupted', 'interrupted run');
  const received = events.filter((e) => e.event_type === 'interrupt_received');
  check(received.length === 1, `${received.length} interrupt_received events: ${types(events)}`);
  const elapsed = Date.now() - started;
  check(elapsed < 20_000, `the interrupted run took ${elapsed} ms (sleep 30 was not stopped)`);

  const { data: status, error, response } = await sessionsStatus({ path: { session_id: run.session_id } });
  check(status, failure('sessions_status', response, error));
  check(status.status === 'committed', `session status ${status.status} after the interrupt`);
  const again = await conversationsInterrupt({ path: { conversation_id: run.conversation_id } });
  check(again.data?.interrupted.length === 0, failure('second interrupt (expected [])', again.response, again.error ?? again.data));
  return `interrupted after ${elapsed} ms: ${types(events.slice(-3))}`;
}

/** conversations_run_stream: the answer is the run's event stream. */
async function flowRunStream(): Promise<string> {
  const preset = `ts-echo2-${suffix}`;
  await createPreset(preset, 'test:echo');
  let streamError: unknown;
  const { stream } = await conversationsRunStream({
    body: { preset_id: preset, input: text('streamed') },
    headers: { 'Idempotency-Key': idempotencyKey() },
    sseMaxRetryAttempts: 1,
    onSseError: (error) => {
      streamError = error;
    },
  });
  const events: RunEvent[] = [];
  for await (const data of stream) {
    // Typed by the SDK as RunEvent | void (void: the 204 a repeat past the end gets).
    check(data, 'conversations_run_stream yielded an empty event');
    events.push(data);
  }
  check(streamError === undefined, `conversations_run_stream: ${String(streamError)}`);
  checkRunEnd(events, 'completed', 'run_stream');
  check(finalText(events) === 'echo: streamed', `run_stream said ${show(finalText(events))}`);
  return `${events.length} events`;
}

/** conversations_run_wait: the answer is the run's result. */
async function flowRunWait(): Promise<string> {
  const preset = `ts-echo3-${suffix}`;
  await createPreset(preset, 'test:echo');
  const { data, error, response } = await conversationsRunWait({
    body: { preset_id: preset, input: text('waited') },
    headers: { 'Idempotency-Key': idempotencyKey() },
  });
  check(data, failure('conversations_run_wait', response, error));
  check(data.status === 'committed' && data.stop_reason === 'completed', `run_wait: ${show(data)}`);
  check(data.final_message === 'echo: waited', `run_wait final_message ${show(data.final_message)}`);
  check(data.session_id && data.conversation_id && data.run_summary, `run_wait: ${show(data)}`);
  return show(data);
}

/** A retried run is the same run: the 202 again, then its result; another body is 409. */
async function flowRetry(): Promise<string> {
  const preset = `ts-echo4-${suffix}`;
  await createPreset(preset, 'test:echo');
  const key = idempotencyKey();
  const body: RunRequest = { preset_id: preset, input: text('only once') };
  const first = await startRun(body, key);
  const again = await startRun(body, key);
  check(again.session_id === first.session_id, `a retry started ${again.session_id}, not ${first.session_id}`);
  const { data, error, response } = await conversationsRunWait({
    body,
    headers: { 'Idempotency-Key': key },
  });
  check(data, failure('conversations_run_wait (retry)', response, error));
  check(data.session_id === first.session_id, `the retried wait answered ${data.session_id}`);
  check(data.final_message === 'echo: only once', `retried wait said ${show(data.final_message)}`);
  const other = await conversationsRun({
    body: { preset_id: preset, input: text('something else') },
    headers: { 'Idempotency-Key': key },
  });
  check(other.response?.status === 409, `another body with a used key: ${other.response?.status}`);
  check(
    (other.error as ApiError | undefined)?.error === 'idempotency_conflict',
    `another body with a used key: ${show(other.error)}`,
  );
  return `session ${first.session_id} twice, then 409 idempotency_conflict`;
}

// ------------------------------------------------------------------ main

const flows: Array<[string, () => Promise<string>]> = [
  ['run (202) + sessions_events + Last-Event-ID resume', flowRunAndResume],
  ['run_stream', flowRunStream],
  ['run_wait', flowRunWait],
  ['retry with the same Idempotency-Key', flowRetry],
  ['steer', flowSteer],
  ['interrupt', flowInterrupt],
];

async function main(): Promise<void> {
  try {
    configure();
  } catch (error) {
    console.error(`ts-client flow: ${(error as Error).message} (usage: BASE_URL=http://host:port TOKEN=... node dist/flow.js)`);
    process.exit(2);
  }
  for (const [name, flow] of flows) {
    const started = Date.now();
    try {
      const summary = await flow();
      console.log(`ts-client flow: ok   ${name} (${Date.now() - started} ms): ${summary}`);
    } catch (error) {
      const message = error instanceof FlowError ? error.message : (error as Error).stack ?? String(error);
      console.error(`ts-client flow: FAIL ${name}: ${message}`);
      process.exit(1);
    }
  }
  console.log(`ts-client flow: ${flows.length} passed, 0 failed`);
}

await main();
