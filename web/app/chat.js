// A conversation: its transcript (committed turns, oldest first), the run going on (live),
// pending approvals, the mailbox, the branches, and the composer.
//
// Which turns: the conversation's agent sessions form a DAG. The page shows the chain that
// ends at the head: by default the newest committed (or awaiting) session, which is what a
// plain "continue" (POST /conversations/run) extends; `#/conversations/{id}/head/{sid}`
// picks another leaf, and sending there continues that leaf (POST /sessions/execute).
// Failed sessions hanging off the chain are shown where they happened.
//
// A run in progress is not in the turns (they list finished sessions only): the page
// attaches to its events and renders it live below them; when it ends the turns are
// reloaded and the live block gives way to the committed turn. A page opened (or
// reloaded) mid-run finds the run in the conversation's `active_session` and attaches from
// the start of its events.
import { html, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from './html.js';
import { api, ApiError, errorText } from './api.js';
import { Approvals } from './approvals.js';
import { Branches, chainOf, lineageOf } from './branches.js';
import { Composer } from './composer.js';
import { Mailbox } from './mailbox.js';
import { hrefs, navigate } from './router.js';
import { noteRun, presets, runNotes, toast, toastError, touchConversations } from './state.js';
import { LiveRun } from './stream.js';
import { Messages, StatusBadge } from './transcript.js';
import { conversationTitle, formatDateTime, formatDuration, formatTokens, newId, shortId, titleFromText } from './util.js';
import { useStore } from './store.js';

/** On phones focusing the composer opens the keyboard over the transcript: not at once. */
const WIDE = window.matchMedia('(min-width: 721px)');

/** The text a run's user entry shows: the typed text, else the attachments' names. */
export function userTextOf(parts, text) {
  if (text && text.trim()) return text;
  const names = parts.filter((p) => p.type === 'binary').map((p) => p.name);
  return names.length ? `[${names.join(', ')}]` : '';
}

/** Keeps a scroll container at the bottom while its content grows, unless scrolled up. */
function useStickToBottom(scroller, content) {
  const atBottom = useRef(true);
  useEffect(() => {
    const el = scroller.current;
    const inner = content.current;
    if (!el || !inner) return undefined;
    const onScroll = () => {
      atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    };
    el.addEventListener('scroll', onScroll, { passive: true });
    const observer = new ResizeObserver(() => {
      if (atBottom.current) el.scrollTop = el.scrollHeight;
    });
    observer.observe(inner);
    return () => {
      el.removeEventListener('scroll', onScroll);
      observer.disconnect();
    };
  }, []);
  return () => {
    atBottom.current = true;
    const el = scroller.current;
    if (el) el.scrollTop = el.scrollHeight;
  };
}

async function fetchConversation(id) {
  const conv = await api.conversations.get(id);
  const [turns, sessions] = await Promise.all([api.conversations.turns(id), api.conversations.sessions(id)]);
  const hasAsync = sessions.some((s) => s.session_type === 'async_subagent');
  const mailbox = hasAsync || conv.mailbox?.pending_count
    ? await api.conversations.mailbox(id)
    : { messages: [], pending_count: 0 };
  return { conv, turns, sessions, mailbox };
}

/** What the page shows of a conversation, derived from turns and sessions. */
function arrange(data, headParam) {
  const { turns, sessions } = data;
  const agent = sessions.filter((s) => s.session_type === 'agent');
  const byId = new Map(sessions.map((s) => [s.session_id, s]));
  let latest = null;
  for (const s of agent) {
    if (s.status !== 'committed' && s.status !== 'awaiting_tool_results') continue;
    if (!latest || s.created_at >= latest.created_at) latest = s;
  }
  const headSession = (headParam && byId.get(headParam)?.session_type === 'agent' && byId.get(headParam)) || latest;
  let visible;
  if (headSession) {
    const chain = new Set(chainOf(headSession.session_id, agent).map((s) => s.session_id));
    visible = turns.filter((t) => {
      if (chain.has(t.session_id)) return true;
      const s = byId.get(t.session_id);
      // A failed run is a dead end: shown where it happened, after the turn it tried to
      // continue (or among the first turns when it had no parent).
      return t.status === 'failed' && (!s?.parent_session_id || chain.has(s.parent_session_id));
    });
  } else {
    visible = turns; // nothing committed yet (only failures): show everything
  }
  return { byId, latest, head: headSession, visible, isLatestHead: !headSession || headSession === latest };
}

/** What a session that stopped for tool calls waits for. */
function pausedFor(session) {
  const kinds = new Set((session?.pending_tool_calls || []).map((c) => c.kind));
  return kinds.has('approval') ? 'approval' : kinds.has('external') ? 'tool results' : 'tools';
}

function TurnHeader({ number, turn, session, canFork, onFork, inherited, isHead }) {
  const note = runNotes.get(turn.session_id);
  const summary = session?.run_summary;
  return html`<div class="turn-head">
    <span class="turn-number">Turn ${number}</span>
    <span class="muted" title=${turn.session_id}>session ${shortId(turn.session_id)}</span>
    ${session?.preset_id && html`<span class="muted">${session.preset_id}</span>`}
    ${turn.status === 'failed' && html`<${StatusBadge} status="error" label="failed" />`}
    ${turn.status === 'awaiting_tool_results' && (isHead
      ? html`<${StatusBadge} status="pending" label="waiting for you" />`
      : html`<span class="badge">paused for ${pausedFor(session)}</span>`)}
    ${note?.stopReason === 'interrupted' && html`<${StatusBadge} status="cancelled" label="interrupted" />`}
    ${note?.stopReason === 'limit_reached' && html`<${StatusBadge} status="error" label="limit reached" />`}
    ${summary && html`<span class="muted">${formatTokens(summary.usage)} · ${formatDuration(summary.duration_ms)}</span>`}
    <span class="spacer"></span>
    ${inherited && html`<span class="muted">inherited</span>`}
    ${canFork && html`<button type="button" class="link fork-button" onClick=${onFork}>Fork from here</button>`}
  </div>`;
}

function ForkForm({ conversationId, sessionId, title, onDone }) {
  const fork = async (parts, text) => {
    const res = await api.conversations.fork(conversationId, { from_session_id: sessionId, input: parts });
    noteRun(res.session_id, { userText: userTextOf(parts, text) });
    toast('Forked into a new conversation.');
    onDone();
    navigate(hrefs.conversation(res.conversation_id));
    // A fork starts with the original's title: mark it, so the list tells them apart.
    const base = title?.trim() || titleFromText(userTextOf(parts, text));
    api.conversations.update(res.conversation_id, { title: `${base.slice(0, 480)} (fork)` })
      .catch(toastError)
      .finally(touchConversations);
  };
  return html`<div class="fork-form">
    <p class="muted">A new conversation continues from this turn; this one stays as it is.</p>
    <${Composer} onSend=${fork} autoFocus label="First message of the fork"
      placeholder="First message of the fork… (Enter to fork)" />
    <button type="button" class="link" onClick=${onDone}>Cancel</button>
  </div>`;
}

/** The run going on, re-rendered as its events arrive. */
function LiveTurn({ run, number }) {
  const [, setTick] = useState(0);
  useEffect(() => run.subscribe(() => setTick((n) => n + 1)), [run]);
  const messages = [...run.messages];
  const done = run.completed || run.failed;
  return html`<article class="turn live" data-session=${run.sessionId} data-state=${run.state}>
    <div class="turn-head">
      <span class="turn-number">Turn ${number}</span>
      <span class="muted">session ${shortId(run.sessionId)}</span>
      ${!done && html`<span class="badge status-pending live-state">${run.stopping ? 'stopping…'
        : run.state === 'reconnecting' ? 'reconnecting…' : run.compacting ? 'compacting…' : 'running'}</span>`}
      ${run.completed?.stop_reason === 'interrupted' && html`<${StatusBadge} status="cancelled" label="interrupted" />`}
      ${run.completed && run.completed.stop_reason !== 'interrupted' && html`<${StatusBadge} status="success" label=${run.completed.stop_reason.replace(/_/g, ' ')} />`}
      ${run.failed && html`<${StatusBadge} status="error" label="failed" />`}
      ${run.usage && html`<span class="muted">${formatTokens(run.usage)}</span>`}
    </div>
    <${Messages} messages=${messages} live=${!done} />
    ${run.queuedSteers.length > 0 && html`<ul class="queued-steers">
      ${run.queuedSteers.map((s) => html`<li key=${s.id}>Steering queued: ${s.text}</li>`)}
    </ul>`}
    ${!done && !messages.some((m) => m.kind !== 'user') && html`<p class="muted typing">Waiting for the agent…</p>`}
  </article>`;
}

function Turn({ turn, number, session, canFork, onFork, forkOpen, conversationId, title, onForkDone, inherited, isHead }) {
  return html`<article class=${`turn${inherited ? ' inherited' : ''}`} data-session=${turn.session_id}>
    <${TurnHeader} number=${number} turn=${turn} session=${session} canFork=${canFork}
      onFork=${onFork} inherited=${inherited} isHead=${isHead} />
    <${Messages} messages=${turn.display_messages} />
    ${forkOpen && html`<${ForkForm} conversationId=${conversationId} sessionId=${turn.session_id} title=${title}
      onDone=${onForkDone} />`}
  </article>`;
}

function ChatHeader({ conv, onChanged }) {
  const [editing, setEditing] = useState(false);
  const [title, setTitle] = useState('');
  const save = async (e) => {
    e.preventDefault();
    try {
      await api.conversations.update(conv.conversation_id, { title: title.trim() || null });
      setEditing(false);
      onChanged();
    } catch (err) {
      toastError(err);
    }
  };
  const archive = async () => {
    try {
      const status = conv.status === 'archived' ? 'active' : 'archived';
      await api.conversations.update(conv.conversation_id, { status });
      toast(status === 'archived' ? 'Archived.' : 'Back among the active conversations.');
      onChanged();
    } catch (err) {
      toastError(err);
    }
  };
  return html`<header class="chat-header">
    <a class="back" href=${hrefs.home()} aria-label="All conversations">‹</a>
    ${editing
      ? html`<form class="rename" onSubmit=${save}>
          <label class="visually-hidden" for="rename-input">Title</label>
          <input id="rename-input" type="text" maxlength="500" value=${title} autoFocus
            onInput=${(e) => setTitle(e.currentTarget.value)}
            onKeyDown=${(e) => e.key === 'Escape' && setEditing(false)} />
          <button type="submit" class="primary">Save</button>
          <button type="button" class="secondary" onClick=${() => setEditing(false)}>Cancel</button>
        </form>`
      : html`<h2 class="chat-title">${conversationTitle(conv)}</h2>
        ${conv.status === 'archived' && html`<span class="badge">archived</span>`}
        <span class="spacer"></span>
        <button type="button" class="secondary" onClick=${() => { setTitle(conv.title || ''); setEditing(true); }}>Rename</button>
        <button type="button" class="secondary" onClick=${archive}>${conv.status === 'archived' ? 'Unarchive' : 'Archive'}</button>`}
  </header>`;
}

export function ChatView({ conversationId, headParam }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [live, setLive] = useState(/** @type {LiveRun | null} */ (null));
  const [lineage, setLineage] = useState([]);
  const [forkFrom, setForkFrom] = useState(null);
  const [version, setVersion] = useState('');
  const liveRef = useRef(null);
  const loadSeq = useRef(0);
  const pollTimer = useRef(null);
  const settleTries = useRef(0);
  const scroller = useRef(null);
  const content = useRef(null);
  const toBottom = useStickToBottom(scroller, content);
  const presetList = useStore(presets);

  const attach = useCallback((sessionId) => {
    if (liveRef.current?.sessionId === sessionId) return;
    liveRef.current?.close();
    const run = new LiveRun({
      sessionId,
      conversationId,
      userText: runNotes.get(sessionId)?.userText,
      onEnd: (r) => {
        if (r.completed) noteRun(sessionId, { stopReason: r.completed.stop_reason });
        touchConversations();
        load();
      },
    });
    liveRef.current = run;
    settleTries.current = 0;
    setLive(run);
    run.start();
    toBottom();
  }, [conversationId]);

  const load = useCallback(async () => {
    const seq = ++loadSeq.current;
    clearTimeout(pollTimer.current);
    try {
      const next = await fetchConversation(conversationId);
      if (seq !== loadSeq.current) return;
      setData(next);
      setError(null);
      // The branch list reloads when the sessions changed (not on every poll).
      setVersion(next.sessions.map((s) => `${s.session_id}:${s.status}`).join(','));
      const active = next.conv.active_session;
      const current = liveRef.current;
      // A run whose turn is already committed is over, even if the conversation still
      // names it active for a moment.
      const activeDone = active && next.turns.some((t) => t.session_id === active.session_id);
      if (active && !activeDone && current?.sessionId !== active.session_id) {
        attach(active.session_id);
      } else if (current && !current.running) {
        if (next.turns.some((t) => t.session_id === current.sessionId)) {
          // The run's committed turn is in: the live block gives way to it.
          current.close();
          liveRef.current = null;
          setLive(null);
          settleTries.current = 0;
        } else if (settleTries.current++ < 10) {
          // The stream ended a moment before the stored session says so: look again.
          pollTimer.current = setTimeout(load, 300);
          return;
        }
      }
      // Async subagents still working: their outcomes land in the mailbox; look again soon.
      if (next.sessions.some((s) => s.session_type === 'async_subagent' && s.status === 'created')) {
        pollTimer.current = setTimeout(load, 2000);
      }
    } catch (err) {
      if (seq !== loadSeq.current) return;
      setError(err);
    }
  }, [conversationId, attach]);

  useEffect(() => {
    setData(null);
    setError(null);
    setForkFrom(null);
    setLineage([]);
    load();
    let cancelled = false;
    lineageOf(conversationId).then((l) => !cancelled && setLineage(l)).catch(() => {});
    return () => {
      cancelled = true;
      loadSeq.current++;
      clearTimeout(pollTimer.current);
      liveRef.current?.close();
      liveRef.current = null;
      setLive(null);
    };
  }, [conversationId]);

  const view = useMemo(() => (data ? arrange(data, headParam) : null), [data, headParam]);

  // Scroll to the end when a conversation is first shown.
  const shownFor = useRef(null);
  useLayoutEffect(() => {
    if (data && shownFor.current !== conversationId) {
      shownFor.current = conversationId;
      toBottom();
    }
  }, [data, conversationId]);

  if (error && !data) {
    const missing = error instanceof ApiError && error.status === 404;
    return html`<section class="chat empty-state">
      <p class="form-error" role="alert">${missing ? 'There is no such conversation.' : errorText(error)}</p>
      <p><a href=${hrefs.home()}>All conversations</a></p>
    </section>`;
  }
  if (!data || !view) return html`<section class="chat"><p class="muted pad">Loading…</p></section>`;

  const { conv, mailbox } = data;
  const liveShown = live && !data.turns.some((t) => t.session_id === live.sessionId);
  const running = !!(liveShown && live.running);
  const head = view.head;
  const pending = !running && head?.status === 'awaiting_tool_results' ? head.pending_tool_calls || [] : [];
  const inheritedCount = lineage.reduce((n, l) => n + l.turns.length, 0);

  /** The preset a run from a non-latest head uses (sessions/execute needs one). */
  const presetForHead = () => head?.preset_id || conv.default_preset_id
    || (presetList || []).find((p) => p.is_default)?.preset_id;

  /** Starts a run after the head: a plain continue, or from an explicit branch head. */
  const startRun = async (extra) => {
    try {
      if (view.isLatestHead) return await api.conversations.run({ conversation_id: conversationId, ...extra });
      const res = await api.sessions.execute({ preset_id: presetForHead(), parent_session_id: head.session_id, ...extra });
      navigate(hrefs.conversation(conversationId), { replace: true });
      return res;
    } catch (err) {
      // Someone else's run is going on: show it instead.
      if (err instanceof ApiError && err.code === 'conversation_busy' && err.details?.active_session) {
        attach(err.details.active_session.session_id);
      }
      throw err;
    }
  };

  const send = async (parts, text) => {
    const res = await startRun({ input: parts });
    noteRun(res.session_id, { userText: userTextOf(parts, text) });
    touchConversations();
    attach(res.session_id);
  };

  const steer = async (parts, text) => {
    const messageId = newId();
    try {
      await api.conversations.steer(conversationId, { input: parts, message_id: messageId });
    } catch (err) {
      // The run ended between the page's last look and this message: send it instead.
      if (err instanceof ApiError && err.status === 404) return send(parts, text);
      throw err;
    }
    if (live) {
      live.queuedSteers.push({ id: messageId, text: userTextOf(parts, text) });
      live.changed(true);
    }
  };

  const interrupt = () => api.conversations.interrupt(conversationId);

  const answer = async (answers) => {
    const res = await startRun(answers);
    attach(res.session_id);
  };

  const fire = async (text) => {
    const input = text.trim() ? [{ type: 'text', text }] : undefined;
    const res = await api.conversations.fire(conversationId, input ? { input } : {});
    if (text.trim()) noteRun(res.session_id, { userText: text });
    touchConversations();
    attach(res.session_id);
  };

  let number = inheritedCount;
  return html`<section class="chat" data-conversation=${conversationId}>
    <${ChatHeader} conv=${conv} onChanged=${() => { touchConversations(); load(); }} />
    <div class="chat-scroll" ref=${scroller}>
      <div class="chat-content" ref=${content}>
        ${lineage.map((l) => html`<div class="lineage" key=${l.conversation.conversation_id}>
          <p class="fork-banner">Forked from <a href=${hrefs.conversation(l.conversation.conversation_id)}>
            ${conversationTitle(l.conversation)}</a>: ${l.turns.length === 1 ? 'the first turn below is' : `the first ${l.turns.length} turns below are`} shared with it.</p>
          ${l.turns.map((t, i) => html`<${Turn} key=${t.session_id} turn=${t} inherited
            number=${lineage.slice(0, lineage.indexOf(l)).reduce((n, x) => n + x.turns.length, 0) + i + 1}
            session=${l.sessions.find((s) => s.session_id === t.session_id)}
            canFork=${t.status === 'committed' && !running} conversationId=${l.conversation.conversation_id}
            title=${l.conversation.title} forkOpen=${forkFrom === t.session_id}
            onFork=${() => setForkFrom(forkFrom === t.session_id ? null : t.session_id)}
            onForkDone=${() => setForkFrom(null)} />`)}
        </div>`)}
        ${view.visible.length === 0 && !liveShown && html`<p class="muted pad">No turns yet.</p>`}
        ${view.visible.map((t) => {
          number += 1;
          const session = view.byId.get(t.session_id);
          const canFork = t.status === 'committed' && !running;
          return html`<${Turn} key=${t.session_id} turn=${t} number=${number} session=${session}
            canFork=${canFork} conversationId=${conversationId} title=${conv.title}
            isHead=${t.session_id === head?.session_id && !running}
            forkOpen=${forkFrom === t.session_id}
            onFork=${() => setForkFrom(forkFrom === t.session_id ? null : t.session_id)}
            onForkDone=${() => setForkFrom(null)} />`;
        })}
        ${liveShown && html`<${LiveTurn} run=${live} number=${number + 1} />`}
        ${pending.length > 0 && html`<${Approvals} key=${head.session_id} pending=${pending} onSubmit=${answer} />`}
        ${(mailbox.messages.length > 0) && html`<${Mailbox} mailbox=${mailbox} running=${running} onFire=${fire} />`}
        ${!view.isLatestHead && html`<p class="notice">You are viewing another branch of this conversation:
          sending continues this branch. <a href=${hrefs.conversation(conversationId)}>Back to the latest</a></p>`}
        <${Branches} conversationId=${conversationId} headId=${head?.session_id} version=${version} />
        ${conv.updated_at && html`<p class="muted small pad">Last activity ${formatDateTime(conv.updated_at)}</p>`}
      </div>
    </div>
    <${Composer} mode=${running ? 'steer' : 'send'} onSend=${running ? steer : send} onInterrupt=${interrupt}
      autoFocus=${WIDE.matches} hint=${pending.length ? 'Sending a message denies the calls above.' : ''} />
  </section>`;
}

/** `#/new`: pick a preset, write the first message; the conversation exists once sent. */
export function NewConversation() {
  const list = useStore(presets);
  const [presetId, setPresetId] = useState('');
  useEffect(() => {
    if (!presetId && list?.length) setPresetId((list.find((p) => p.is_default) || list[0]).preset_id);
  }, [list]);

  const send = async (parts, text) => {
    const res = await api.conversations.run({ preset_id: presetId || undefined, input: parts });
    const userText = userTextOf(parts, text);
    noteRun(res.session_id, { userText });
    // Conversations have no automatic titles: the first line of the first message.
    const title = titleFromText(userText);
    navigate(hrefs.conversation(res.conversation_id));
    if (title) {
      api.conversations.update(res.conversation_id, { title })
        .then(() => touchConversations())
        .catch(toastError);
    } else {
      touchConversations();
    }
  };

  return html`<section class="chat new-conversation">
    <header class="chat-header">
      <a class="back" href=${hrefs.home()} aria-label="All conversations">‹</a>
      <h2 class="chat-title">New conversation</h2>
    </header>
    <div class="chat-scroll"><div class="chat-content">
      <p class="muted pad">The conversation starts with your first message. The preset decides the model, the
        tools and the system prompt; <a href=${hrefs.presets()}>manage presets</a>.</p>
    </div></div>
    <${Composer} onSend=${send} autoFocus label="First message">
      <div class="preset-picker">
        <label for="preset-select">Preset</label>
        <select id="preset-select" value=${presetId} onChange=${(e) => setPresetId(e.currentTarget.value)}>
          ${(list || []).map((p) => html`<option value=${p.preset_id} key=${p.preset_id}>
            ${p.name} (${p.model.name})${p.is_default ? ' · default' : ''}</option>`)}
        </select>
      </div>
    </${Composer}>
  </section>`;
}
