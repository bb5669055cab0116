// A live run: the session's events through an EventSource (the cookie authenticates it),
// folded into display messages as they arrive.
//
// Resuming: the server sends `retry:` and `id:`; when the connection drops, the browser
// reconnects by itself and sends Last-Event-ID, so the stream continues after the last
// event seen. Events at or below the last id seen are ignored anyway, so a replay can never
// duplicate text. A page that reloads mid-run attaches from the start (no cursor) and
// rebuilds the whole run. After the terminal event (run_completed / run_failed) the page
// closes the EventSource itself; if the browser gives up (it closes on a non-200 answer:
// 401, 404, 410 once the stream expired), the session's status decides what happened.
import { api, notifyUnauthorized, ApiError } from './api.js';
import { DisplayBuilder } from './display.js';

export const EVENT_TYPES = [
  'run_started', 'message_start', 'content_delta', 'content_done', 'message_end',
  'tool_call_start', 'tool_call_args_delta', 'tool_call_result', 'tool_call_end',
  'usage_snapshot', 'steering_injected', 'interrupt_received', 'compact_started',
  'compact_completed', 'handoff_completed', 'subagent_started', 'subagent_completed',
  'warning', 'run_completed', 'run_failed',
];

/** How often at most views re-render while deltas stream in. */
const RENDER_EVERY_MS = 40;

export class LiveRun {
  /**
   * @param {{sessionId: string, conversationId: string, userText?: string,
   *          onEnd?: (run: LiveRun) => void}} options
   */
  constructor({ sessionId, conversationId, userText, onEnd }) {
    this.sessionId = sessionId;
    this.conversationId = conversationId;
    this.builder = new DisplayBuilder();
    this.builder.pushUser(userText);
    /** 'connecting' | 'running' | 'reconnecting' | 'ended' */
    this.state = 'connecting';
    this.lastEventId = 0;
    this.usage = null;
    /** run_completed's payload, or null */
    this.completed = null;
    /** run_failed's payload, or null */
    this.failed = null;
    this.stopping = false;
    this.compacting = false;
    /** message ids of steers sent from this page and not yet injected */
    this.queuedSteers = [];
    this.onEnd = onEnd;
    this.listeners = new Set();
    this.timer = null;
    this.es = null;
    this.closed = false;
  }

  get messages() {
    return this.builder.messages;
  }

  get running() {
    return this.state !== 'ended';
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Coalesces bursts of events into one render. */
  changed(now = false) {
    if (now) {
      clearTimeout(this.timer);
      this.timer = null;
      for (const fn of [...this.listeners]) fn(this);
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      for (const fn of [...this.listeners]) fn(this);
    }, RENDER_EVERY_MS);
  }

  start() {
    this.connect(0);
    return this;
  }

  connect(after) {
    const es = new EventSource(api.sessions.eventsUrl(this.sessionId, after));
    this.es = es;
    const onFrame = (e) => this.onFrame(e);
    for (const type of EVENT_TYPES) es.addEventListener(type, onFrame);
    es.onopen = () => {
      if (this.state !== 'ended') {
        this.state = 'running';
        this.changed(true);
      }
    };
    es.onerror = () => {
      if (this.closed || es !== this.es) return;
      if (es.readyState === EventSource.CLOSED) {
        this.verify();
      } else {
        this.state = 'reconnecting'; // the browser retries after the server's retry: delay
        this.changed(true);
      }
    };
  }

  onFrame(frame) {
    let event;
    try {
      event = JSON.parse(frame.data);
    } catch {
      return;
    }
    const id = Number(event.event_id ?? frame.lastEventId);
    if (id && id <= this.lastEventId) return; // already applied (a replay after a reconnect)
    if (id) this.lastEventId = id;
    if (this.state !== 'running') this.state = 'running';
    const p = event.payload || {};
    switch (event.event_type) {
      case 'usage_snapshot':
        this.usage = p.usage;
        break;
      case 'interrupt_received':
        this.stopping = true;
        break;
      case 'compact_started':
        this.compacting = true;
        break;
      case 'compact_completed':
      case 'handoff_completed':
        this.compacting = false;
        break;
      case 'steering_injected':
        this.queuedSteers = this.queuedSteers.filter((s) => s.id !== p.message_id);
        break;
      case 'run_completed':
        this.completed = p;
        if (p.run_summary?.usage) this.usage = p.run_summary.usage;
        break;
      case 'run_failed':
        this.failed = p;
        break;
      default:
        break;
    }
    this.builder.apply(event);
    if (event.event_type === 'run_completed' || event.event_type === 'run_failed') {
      this.finish();
    } else {
      this.changed();
    }
  }

  /** The browser closed the stream without a terminal event: ask the session why. */
  async verify() {
    if (this.closed) return;
    try {
      const { status } = await api.sessions.status(this.sessionId);
      if (this.closed) return;
      if (status === 'executing' || status === 'created') {
        // Still running (the stream was cut by a proxy, a restart…): resume after the
        // last event seen, a little later so a persistent failure does not spin.
        this.state = 'reconnecting';
        this.changed(true);
        setTimeout(() => !this.closed && this.connect(this.lastEventId), 1500);
        return;
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) notifyUnauthorized(err);
    }
    this.finish();
  }

  finish() {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.closeStream();
    this.changed(true);
    this.onEnd?.(this);
  }

  closeStream() {
    if (this.es) {
      this.es.onerror = null;
      this.es.close();
    }
  }

  /** Stops listening (the view went away); the run itself goes on. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.closeStream();
    this.listeners.clear();
  }
}
