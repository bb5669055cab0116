// Rendering display messages: user text, assistant markdown, thinking (collapsed), tool
// calls (collapsible, long output folded), subagent blocks (their own entries nested
// inside), errors and warnings. The same components render committed turns, live runs and
// an async subagent's session opened from the mailbox.
import { html, useMemo, useState } from './html.js';
import { nest } from './display.js';
import { renderCode, renderMarkdown } from './markdown.js';
import { prettyJson } from './util.js';

/** Markdown rendered to sanitized HTML (see markdown.js). */
export function Markdown({ text, class: cls = '' }) {
  const __html = useMemo(() => renderMarkdown(text), [text]);
  return html`<div class=${`md ${cls}`} dangerouslySetInnerHTML=${{ __html }}></div>`;
}

const FOLD_LINES = 24;
const FOLD_CHARS = 4000;

/** Preformatted text, folded past FOLD_LINES lines or FOLD_CHARS characters. */
export function Folded({ text, lang }) {
  const [all, setAll] = useState(false);
  const value = String(text ?? '');
  const lines = value.split('\n');
  const long = lines.length > FOLD_LINES || value.length > FOLD_CHARS;
  const shown = !long || all ? value : lines.slice(0, FOLD_LINES).join('\n').slice(0, FOLD_CHARS);
  const __html = useMemo(() => (lang ? renderCode(shown, lang) : null), [shown, lang]);
  return html`<div class="folded">
    ${__html != null
      ? html`<pre class="code"><code class="hljs" dangerouslySetInnerHTML=${{ __html }}></code></pre>`
      : html`<pre class="output">${shown}</pre>`}
    ${long && html`<button type="button" class="link" onClick=${() => setAll(!all)}>
      ${all ? 'Fold' : `Show all (${lines.length} lines, ${value.length} characters)`}
    </button>`}
  </div>`;
}

const STATUS_LABEL = { success: 'done', error: 'error', pending: 'running', cancelled: 'cancelled' };

export function StatusBadge({ status, label }) {
  return html`<span class=${`badge status-${status}`}>${label || STATUS_LABEL[status] || status}</span>`;
}

function UserEntry({ message }) {
  return html`<div class="entry user">
    <div class="who">${message.steered ? 'You (steering)' : 'You'}</div>
    <div class="user-text">${message.text}</div>
  </div>`;
}

function AssistantEntry({ message, live }) {
  return html`<div class=${`entry assistant${live ? ' streaming' : ''}`}>
    <${Markdown} text=${message.text} />
  </div>`;
}

function ThinkingEntry({ message }) {
  return html`<details class="entry thinking">
    <summary>Thinking</summary>
    <div class="thinking-text">${message.text}</div>
  </details>`;
}

/** The first characters of a call's arguments, for its summary line. */
function argsPreview(args) {
  let text = args || '';
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === 'object') {
      text = Object.entries(parsed)
        .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(', ');
    }
  } catch {
    // partial JSON while it streams: show it raw
  }
  text = text.replace(/\s+/g, ' ');
  return text.length > 90 ? `${text.slice(0, 89)}…` : text;
}

function ToolCallEntry({ message, live }) {
  return html`<details class="entry tool-call" data-tool=${message.tool_name}>
    <summary>
      <span class="tool-name">${message.tool_name}</span>
      <span class="tool-args-preview">${argsPreview(message.args)}</span>
      <${StatusBadge} status=${message.status} label=${message.status === 'pending' && !live ? 'deferred' : undefined} />
    </summary>
    <div class="tool-body">
      <div class="label">Arguments</div>
      <${Folded} text=${prettyJson(message.args || '{}')} lang="json" />
      ${message.result != null && html`
        <div class="label">Result</div>
        <${Folded} text=${message.result} />`}
    </div>
  </details>`;
}

function SubagentEntry({ message, children, live }) {
  // Its answer is usually its last text entry already: shown once.
  const lastText = [...children].reverse().find((n) => n.message.kind === 'assistant_text')?.message.text;
  const showAnswer = message.result != null && message.status !== 'pending' &&
    (lastText == null || lastText.trim() !== message.result.trim());
  return html`<details class="entry subagent" open>
    <summary>
      <span class="tool-name">Subagent ${message.subagent_name}</span>
      <${StatusBadge} status=${message.status} />
    </summary>
    <div class="subagent-body">
      <${Nodes} nodes=${children} live=${live} />
      ${showAnswer && html`
        <div class="subagent-result">
          <div class="label">Answer</div>
          <${Markdown} text=${message.result} />
        </div>`}
    </div>
  </details>`;
}

function ErrorEntry({ message }) {
  return html`<div class="entry error" role="alert">
    <strong>Error</strong> <code>${message.code}</code>: ${message.message}
  </div>`;
}

function WarningEntry({ message }) {
  return html`<div class="entry warning">
    <strong>Warning</strong> <code>${message.code}</code>: ${message.message}
  </div>`;
}

function Entry({ node, live }) {
  const { message, children } = node;
  switch (message.kind) {
    case 'user':
      return html`<${UserEntry} message=${message} />`;
    case 'assistant_text':
      return html`<${AssistantEntry} message=${message} live=${live} />`;
    case 'thinking':
      return html`<${ThinkingEntry} message=${message} />`;
    case 'tool_call':
      return html`<${ToolCallEntry} message=${message} live=${live} />`;
    case 'subagent':
      return html`<${SubagentEntry} message=${message} children=${children} live=${live} />`;
    case 'error':
      return html`<${ErrorEntry} message=${message} />`;
    case 'warning':
      return html`<${WarningEntry} message=${message} />`;
    default:
      return null; // a kind this page does not know yet
  }
}

function Nodes({ nodes, live }) {
  return nodes.map((node, i) => html`<${Entry} key=${i} node=${node} live=${live} />`);
}

/** A list of display messages, subagent entries nested in their blocks. */
export function Messages({ messages, live = false }) {
  const nodes = useMemo(() => nest(messages || []), [messages]);
  return html`<div class="messages"><${Nodes} nodes=${nodes} live=${live} /></div>`;
}
