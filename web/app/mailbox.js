// The mailbox: outcomes of async subagents, oldest first. Each opens the subagent's own
// session in place; "Fire" starts a continuation that receives every pending outcome,
// with optional extra input after them.
import { html, useState } from './html.js';
import { api, errorText } from './api.js';
import { Messages, StatusBadge } from './transcript.js';
import { formatWhen, shortId } from './util.js';

/** An async subagent's session, fetched when opened. */
export function SessionInline({ sessionId }) {
  const [state, setState] = useState({ loading: false, session: null, error: '' });
  const [open, setOpen] = useState(false);
  const toggle = async (e) => {
    const isOpen = e.currentTarget.open;
    setOpen(isOpen);
    if (isOpen && !state.session && !state.loading) {
      setState({ loading: true, session: null, error: '' });
      try {
        setState({ loading: false, session: await api.sessions.get(sessionId), error: '' });
      } catch (err) {
        setState({ loading: false, session: null, error: errorText(err) });
      }
    }
  };
  const s = state.session;
  return html`<details class="session-inline" onToggle=${toggle}>
    <summary>Session ${shortId(sessionId)}${s ? ` · ${s.status}` : ''}</summary>
    ${open && html`<div class="session-inline-body">
      ${state.loading && html`<p class="muted">Loading…</p>`}
      ${state.error && html`<p class="form-error">${state.error}</p>`}
      ${s && html`<${Messages} messages=${s.display_messages || []} />`}
      ${s && !(s.display_messages || []).length && html`<p class="muted">No transcript yet${s.status === 'created' ? ': it is still running' : ''}.</p>`}
    </div>`}
  </details>`;
}

/**
 * @param {{mailbox: {messages: any[], pending_count: number}, running: boolean,
 *          onFire: (text: string) => Promise<any>}} props
 */
export function Mailbox({ mailbox, running, onFire }) {
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const pending = mailbox.pending_count;

  const fire = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await onFire(text);
      setText('');
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return html`<details class="panel mailbox" open=${pending > 0}>
    <summary><h3>Mailbox</h3> <span class="badge">${pending} pending</span>
      <span class="muted">${mailbox.messages.length} in all</span></summary>
    <ul class="mailbox-list">
      ${mailbox.messages.map((m) => html`<li key=${m.message_id} class="mailbox-message"
          data-delivered=${m.delivered_to ? 'yes' : 'no'}>
        <div class="row">
          <strong>${m.subagent_name}</strong>
          <${StatusBadge} status=${m.source_type === 'subagent_failed' ? 'error' : 'success'}
            label=${m.source_type === 'subagent_failed' ? 'failed' : 'result'} />
          <span class="muted">${formatWhen(m.created_at)}</span>
          <span class="muted">${m.delivered_to ? `delivered to ${shortId(m.delivered_to)}` : 'pending'}</span>
        </div>
        <${SessionInline} sessionId=${m.source_session_id} />
      </li>`)}
    </ul>
    <form class="fire" onSubmit=${fire}>
      <label class="visually-hidden" for="fire-input">Extra input for the fired run</label>
      <input id="fire-input" type="text" placeholder="Optional message after the outcomes"
        value=${text} onInput=${(e) => setText(e.currentTarget.value)} />
      <button type="submit" class="primary" disabled=${busy || running || pending === 0}
        title=${running ? 'A run is going on' : pending === 0 ? 'Nothing waits in the mailbox' : ''}>
        ${busy ? 'Firing…' : `Fire${pending ? ` (${pending})` : ''}`}</button>
    </form>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
  </details>`;
}
