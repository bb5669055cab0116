// Pending tool calls of a session that stopped `awaiting_tool_results`: approval calls get
// Approve / Deny (with an optional reason), external calls a result to send back. The
// answers go in one continuation run (user_interactions + tool_results, no new input);
// calls it leaves out are denied by the service, so with several calls every one must be
// decided first.
import { html, useState } from './html.js';
import { errorText } from './api.js';
import { Folded } from './transcript.js';

function argsText(args) {
  if (typeof args === 'string') return args;
  return JSON.stringify(args, null, 2);
}

/**
 * @param {{pending: any[], onSubmit: (answer: {user_interactions: any[], tool_results: any[]}) => Promise<any>,
 *          disabled?: boolean}} props
 */
export function Approvals({ pending, onSubmit, disabled = false }) {
  // decisions[id] = {approved, reason} for approvals, {output, is_error} for external calls
  const [decisions, setDecisions] = useState({});
  const [reasons, setReasons] = useState({});
  const [outputs, setOutputs] = useState({});
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const single = pending.length === 1;

  const send = async (all) => {
    setBusy(true);
    setError('');
    try {
      const user_interactions = [];
      const tool_results = [];
      for (const call of pending) {
        const d = all[call.tool_call_id];
        if (!d) continue;
        if (call.kind === 'external') {
          tool_results.push({ tool_call_id: call.tool_call_id, output: d.output, is_error: d.is_error || undefined });
        } else {
          const reason = d.reason?.trim();
          user_interactions.push({ tool_call_id: call.tool_call_id, approved: d.approved, ...(reason ? { reason } : {}) });
        }
      }
      await onSubmit({ user_interactions, tool_results });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const decide = (call, decision) => {
    const next = { ...decisions, [call.tool_call_id]: decision };
    setDecisions(next);
    if (single) send(next); // one call: the button is the answer
  };

  const decided = pending.every((c) => decisions[c.tool_call_id]);
  return html`<section class="panel approvals" aria-label="Waiting for you">
    <h3>${pending.length === 1 ? 'A tool call waits for you' : `${pending.length} tool calls wait for you`}</h3>
    <ul class="pending-list">
      ${pending.map((call) => {
        const id = call.tool_call_id;
        const d = decisions[id];
        return html`<li class="pending-call" key=${id} data-tool-call=${id}>
          <div class="pending-head">
            <span class="tool-name">${call.tool_name}</span>
            <span class="badge">${call.kind === 'external' ? 'external tool' : 'needs approval'}</span>
            ${d && html`<span class=${`badge ${d.approved === false ? 'status-error' : 'status-success'}`}>
              ${call.kind === 'external' ? 'result ready' : d.approved ? 'approved' : 'denied'}</span>`}
          </div>
          <${Folded} text=${argsText(call.args)} lang="json" />
          ${call.kind === 'external'
            ? html`<div class="external-result">
                <label>Result for the model
                  <textarea rows="3" value=${outputs[id] || ''}
                    onInput=${(e) => setOutputs({ ...outputs, [id]: e.currentTarget.value })}></textarea></label>
                <label class="inline"><input type="checkbox" checked=${!!errors[id]}
                  onChange=${(e) => setErrors({ ...errors, [id]: e.currentTarget.checked })} /> It failed (is_error)</label>
                <button type="button" class="primary" disabled=${busy || disabled}
                  onClick=${() => decide(call, { output: outputs[id] || '', is_error: !!errors[id] })}>
                  ${single ? 'Send result' : 'Use this result'}</button>
              </div>`
            : html`<div class="approval-actions">
                <label class="reason">Reason (optional, sent to the model on deny)
                  <input type="text" value=${reasons[id] || ''}
                    onInput=${(e) => setReasons({ ...reasons, [id]: e.currentTarget.value })} /></label>
                <div class="buttons">
                  <button type="button" class="primary" disabled=${busy || disabled}
                    onClick=${() => decide(call, { approved: true, reason: reasons[id] })}>Approve</button>
                  <button type="button" class="danger" disabled=${busy || disabled}
                    onClick=${() => decide(call, { approved: false, reason: reasons[id] })}>Deny</button>
                </div>
              </div>`}
        </li>`;
      })}
    </ul>
    ${!single && html`<div class="row">
      <button type="button" class="primary" disabled=${!decided || busy || disabled}
        onClick=${() => send(decisions)}>Send decisions</button>
      ${!decided && html`<span class="muted">Decide every call first.</span>`}
    </div>`}
    ${busy && html`<p class="muted">Sending…</p>`}
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
  </section>`;
}
