// The composer: a message with attachments. Enter sends, Shift+Enter starts a new line.
// While a run is going it becomes "Steer" (the same parts go to the steer endpoint) and
// shows an "Interrupt" button.
import { html, useEffect, useRef, useState } from './html.js';
import { errorText } from './api.js';
import { fileToBase64, humanSize, newId } from './util.js';

/** The service refuses decoded binary parts over 8 MiB (and request bodies over 10 MiB). */
const MAX_FILE_BYTES = 8 * 1024 * 1024;

/** Input parts from text and files: text first, then one binary part per file. */
export async function toParts(text, files) {
  const parts = [];
  if (text.trim()) parts.push({ type: 'text', text });
  for (const f of files) {
    parts.push({
      type: 'binary',
      data: await fileToBase64(f.file),
      mime_type: f.file.type || 'application/octet-stream',
      name: f.file.name.replace(/[/\\]/g, '_') || 'file',
    });
  }
  return parts;
}

/** Grows a textarea with its content, up to the CSS max-height. */
function autosize(el) {
  if (!el) return;
  el.style.height = 'auto';
  el.style.height = `${el.scrollHeight + 2}px`;
}

/**
 * @param {{
 *   mode?: 'send' | 'steer',
 *   onSend: (parts: any[], text: string) => Promise<any>,
 *   onInterrupt?: () => Promise<any>,
 *   autoFocus?: boolean,
 *   placeholder?: string,
 *   label?: string,
 *   disabled?: boolean,
 *   hint?: any,
 *   children?: any,
 * }} props
 */
export function Composer({
  mode = 'send', onSend, onInterrupt, autoFocus = false, placeholder, label = 'Message',
  disabled = false, hint, children,
}) {
  const [text, setText] = useState('');
  const [files, setFiles] = useState(/** @type {{id: string, file: File}[]} */ ([]));
  const [sending, setSending] = useState(false);
  const [stopping, setStopping] = useState(false);
  const [error, setError] = useState('');
  const area = useRef(null);
  const picker = useRef(null);
  const steering = mode === 'steer';

  useEffect(() => {
    if (autoFocus && area.current) area.current.focus();
  }, [autoFocus]);
  useEffect(() => autosize(area.current), [text]);
  useEffect(() => {
    if (!steering) setStopping(false);
  }, [steering]);

  const addFiles = (list) => {
    const added = [];
    for (const file of list) {
      if (file.size > MAX_FILE_BYTES) {
        setError(`${file.name} is ${humanSize(file.size)}; attachments may be at most 8 MB.`);
        continue;
      }
      added.push({ id: newId(), file });
    }
    if (added.length) setFiles((old) => [...old, ...added]);
  };

  const submit = async () => {
    if (sending || disabled) return;
    if (!text.trim() && !files.length) return;
    setSending(true);
    setError('');
    try {
      const parts = await toParts(text, files);
      await onSend(parts, text);
      setText('');
      setFiles([]);
      area.current?.focus();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setSending(false);
    }
  };

  const interrupt = async () => {
    setStopping(true);
    setError('');
    try {
      await onInterrupt();
    } catch (err) {
      setStopping(false);
      setError(errorText(err));
    }
  };

  const onKeyDown = (e) => {
    // isComposing: Enter that confirms an IME composition is not a send.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  };

  const onPaste = (e) => {
    const pasted = [...(e.clipboardData?.files || [])];
    if (pasted.length) {
      e.preventDefault();
      addFiles(pasted);
    }
  };

  const onDrop = (e) => {
    if (e.dataTransfer?.files?.length) {
      e.preventDefault();
      addFiles([...e.dataTransfer.files]);
    }
  };

  const id = useRef(`composer-${newId().slice(0, 6)}`).current;
  return html`<form class=${`composer${steering ? ' steering' : ''}`}
      onSubmit=${(e) => { e.preventDefault(); submit(); }}
      onDragOver=${(e) => e.preventDefault()} onDrop=${onDrop}>
    ${children}
    ${files.length > 0 && html`<ul class="chips" aria-label="Attachments">
      ${files.map((f) => html`<li class="chip" key=${f.id}>
        <span class="chip-name">${f.file.name}</span>
        <span class="chip-size">${humanSize(f.file.size)}</span>
        <button type="button" class="chip-remove" aria-label=${`Remove ${f.file.name}`}
          onClick=${() => setFiles((old) => old.filter((x) => x.id !== f.id))}>×</button>
      </li>`)}
    </ul>`}
    <label class="visually-hidden" for=${id}>${steering ? 'Steering message' : label}</label>
    <textarea id=${id} ref=${area} rows="1" value=${text} disabled=${disabled}
      placeholder=${placeholder || (steering ? 'Steer the running agent… (Enter to send)' : 'Message… (Enter to send, Shift+Enter for a new line)')}
      onInput=${(e) => setText(e.currentTarget.value)} onKeyDown=${onKeyDown} onPaste=${onPaste}></textarea>
    <div class="composer-actions">
      <input type="file" multiple ref=${picker} class="visually-hidden" tabindex="-1"
        aria-hidden="true" onChange=${(e) => { addFiles([...e.currentTarget.files]); e.currentTarget.value = ''; }} />
      <button type="button" class="secondary" disabled=${disabled} onClick=${() => picker.current?.click()}>Attach</button>
      ${hint && html`<span class="composer-hint">${hint}</span>`}
      <span class="spacer"></span>
      ${steering && onInterrupt && html`<button type="button" class="danger" onClick=${interrupt}
        disabled=${stopping}>${stopping ? 'Interrupting…' : 'Interrupt'}</button>`}
      <button type="submit" class="primary" disabled=${disabled || sending || (!text.trim() && !files.length)}>
        ${sending ? 'Sending…' : steering ? 'Steer' : 'Send'}
      </button>
    </div>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
  </form>`;
}
