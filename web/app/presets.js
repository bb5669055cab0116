// Presets: the list (set default, delete) and the editor. Name, model, system prompt,
// toolsets and approvals are proper fields; the environment and subagents are edited as
// JSON. A 422 `validation_failed` names each broken field (`model.name`,
// `toolsets[0].toolset_name`, `environment.default_path`…): each message is shown on the
// field it names, the rest above the form.
import { html, useEffect, useState } from './html.js';
import { api, ApiError, errorText } from './api.js';
import { hrefs, navigate } from './router.js';
import { presets, reloadPresets, toast, toastError } from './state.js';
import { useStore } from './store.js';

/** Toolsets a preset can switch on (the service's catalogue), with their tools. */
const TOOLSETS = [
  ['core', 'view, edit, multi_edit, write, ls, glob, grep'],
  ['filesystem', 'mkdir, move, copy'],
  ['shell', 'shell'],
  ['web', 'fetch, download, search, scrape'],
  ['task', 'task_create, task_update, task_list, task_get'],
  ['context', 'thinking, handoff'],
  ['subagent', 'delegate, async_delegate'],
  ['media', 'load_media_url, read_video'],
  ['document', 'pdf_convert, office_to_markdown'],
];

const MODEL_SUGGESTIONS = ['test:echo', 'openai:gpt-4o-mini', 'openai:gpt-4o', 'anthropic:claude-sonnet-4'];

export function PresetList() {
  const list = useStore(presets);
  const [confirming, setConfirming] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    reloadPresets().catch((err) => setError(errorText(err)));
  }, []);

  // Each action starts by clearing the last one's error: a refusal explained once must not
  // stay on the page beside a later success.
  const makeDefault = async (p) => {
    setError('');
    try {
      await api.presets.update(p.preset_id, { is_default: true });
      await reloadPresets();
      toast(`${p.name} is now the default preset.`);
    } catch (err) {
      toastError(err);
    }
  };
  const remove = async (p) => {
    setConfirming(null);
    setError('');
    try {
      await api.presets.remove(p.preset_id);
      await reloadPresets();
      toast(`Deleted ${p.name}.`);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 409
        ? `${p.name} cannot be deleted: ${err.message}`
        : errorText(err));
    }
  };

  return html`<section class="page presets">
    <header class="page-header">
      <h2>Presets</h2>
      <span class="spacer"></span>
      <a class="button primary" href=${hrefs.newPreset()}>New preset</a>
    </header>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    ${!list && html`<p class="muted">Loading…</p>`}
    <ul class="preset-list">
      ${(list || []).map((p) => html`<li class="preset-item" key=${p.preset_id} data-preset=${p.preset_id}>
        <div class="preset-main">
          <a href=${hrefs.preset(p.preset_id)} class="preset-name">${p.name}</a>
          ${p.is_default && html`<span class="badge status-success">default</span>`}
          <div class="muted small"><code>${p.preset_id}</code> · ${p.model.name}
            ${p.toolsets.length ? ` · ${p.toolsets.filter((t) => t.enabled !== false).map((t) => t.toolset_name).join(', ')}` : ''}</div>
          ${p.description && html`<div class="small">${p.description}</div>`}
        </div>
        <div class="preset-actions">
          <a class="button secondary" href=${hrefs.preset(p.preset_id)}>Edit</a>
          ${!p.is_default && html`<button type="button" class="secondary" onClick=${() => makeDefault(p)}>Make default</button>`}
          ${confirming === p.preset_id
            ? html`<button type="button" class="danger" onClick=${() => remove(p)}>Really delete</button>
                <button type="button" class="secondary" onClick=${() => setConfirming(null)}>Keep</button>`
            : html`<button type="button" class="secondary" onClick=${() => setConfirming(p.preset_id)}>Delete</button>`}
        </div>
      </li>`)}
    </ul>
  </section>`;
}

/** The form's state from a preset (or the defaults of a new one). */
function formOf(p) {
  const toolsets = {};
  for (const t of p?.toolsets || []) {
    toolsets[t.toolset_name] = { on: t.enabled !== false, exclude: (t.exclude_tools || []).join(', ') };
  }
  return {
    preset_id: p?.preset_id || '',
    name: p?.name || '',
    description: p?.description || '',
    model: p?.model?.name || 'test:echo',
    temperature: p?.model?.temperature ?? '',
    max_tokens: p?.model?.max_tokens ?? '',
    context_window: p?.model?.context_window ?? '',
    system_prompt: p?.system_prompt || '',
    toolsets,
    require_approval: (p?.tool_config?.require_approval || []).join(', '),
    is_default: !!p?.is_default,
    advanced: JSON.stringify({ environment: p?.environment || {}, subagents: p?.subagents || {} }, null, 2),
  };
}

const list = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);
const number = (v) => (v === '' || v == null ? undefined : Number(v));

/** The request body from the form; throws a field error for malformed JSON. */
function bodyOf(form, creating) {
  let advanced;
  try {
    advanced = form.advanced.trim() ? JSON.parse(form.advanced) : {};
    if (!advanced || typeof advanced !== 'object' || Array.isArray(advanced)) throw new Error('not an object');
  } catch (e) {
    throw new ApiError(422, {
      error: 'validation_failed',
      message: 'the advanced settings are not a JSON object',
      details: { fields: [{ field: 'advanced', message: `not a JSON object (${e.message})` }] },
    });
  }
  const model = { name: form.model.trim() };
  for (const key of ['temperature', 'max_tokens', 'context_window']) {
    const v = number(form[key]);
    if (v !== undefined) model[key] = v;
  }
  const toolsets = Object.entries(form.toolsets)
    .filter(([, t]) => t.on)
    .map(([toolset_name, t]) => ({ toolset_name, ...(list(t.exclude).length ? { exclude_tools: list(t.exclude) } : {}) }));
  const body = {
    name: form.name,
    description: form.description.trim() ? form.description : null,
    model,
    system_prompt: form.system_prompt,
    toolsets,
    tool_config: { require_approval: list(form.require_approval) },
    is_default: form.is_default,
    ...advanced,
  };
  if (creating) body.preset_id = form.preset_id.trim();
  return body;
}

/** Which form field a server field path belongs to. */
function fieldKey(path) {
  if (path.startsWith('model.name')) return 'model';
  if (path.startsWith('model.')) return path.slice('model.'.length).split(/[.[]/)[0];
  if (path.startsWith('toolsets')) return 'toolsets';
  if (path.startsWith('tool_config')) return 'require_approval';
  if (path.startsWith('environment') || path.startsWith('subagents') || path === 'advanced') return 'advanced';
  if (['preset_id', 'name', 'description', 'system_prompt', 'is_default'].includes(path)) return path;
  return 'general';
}

/** Fields whose messages name the sub-field they are about (a list entry, a JSON key). */
const PATHS_SHOWN = new Set(['general', 'toolsets', 'require_approval', 'advanced']);

function FieldError({ errors, name }) {
  const mine = errors[name];
  if (!mine?.length) return null;
  return html`<ul class="field-error" id=${`${name}-error`} role="alert">
    ${mine.map((e, i) => html`<li key=${i}>${PATHS_SHOWN.has(name) && e.field !== name ? html`<code>${e.field}</code>: ` : ''}${e.message}</li>`)}
  </ul>`;
}

export function PresetEditor({ presetId }) {
  const creating = !presetId;
  const [form, setForm] = useState(() => formOf(null));
  const [loaded, setLoaded] = useState(creating);
  const [errors, setErrors] = useState({});
  const [general, setGeneral] = useState('');
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    setErrors({});
    setGeneral('');
    if (creating) {
      setForm(formOf(null));
      setLoaded(true);
      return;
    }
    setLoaded(false);
    api.presets.get(presetId)
      .then((p) => {
        setForm(formOf(p));
        setLoaded(true);
      })
      .catch((err) => setGeneral(errorText(err)));
  }, [presetId]);

  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  const setToolset = (name, patch) =>
    setForm({ ...form, toolsets: { ...form.toolsets, [name]: { on: false, exclude: '', ...form.toolsets[name], ...patch } } });

  const save = async (e) => {
    e.preventDefault();
    setSaving(true);
    setErrors({});
    setGeneral('');
    try {
      const body = bodyOf(form, creating);
      const saved = creating ? await api.presets.create(body) : await api.presets.update(presetId, body);
      await reloadPresets();
      toast(creating ? `Created ${saved.name}.` : `Saved ${saved.name}.`);
      if (creating) navigate(hrefs.preset(saved.preset_id));
      else setForm(formOf(saved));
    } catch (err) {
      if (err instanceof ApiError && err.fields.length) {
        const byField = {};
        for (const f of err.fields) (byField[fieldKey(f.field)] ||= []).push(f);
        setErrors(byField);
        setGeneral(byField.general ? '' : 'Some fields need attention (below).');
      } else if (err instanceof ApiError && err.status === 409) {
        setErrors({ preset_id: [{ field: 'preset_id', message: err.message }] });
      } else {
        setGeneral(errorText(err));
      }
    } finally {
      setSaving(false);
    }
  };

  const invalid = (name) => (errors[name]?.length ? { 'aria-invalid': 'true', 'aria-describedby': `${name}-error` } : {});

  if (!loaded) {
    return html`<section class="page"><p class=${general ? 'form-error' : 'muted'}>${general || 'Loading…'}</p>
      <p><a href=${hrefs.presets()}>All presets</a></p></section>`;
  }
  return html`<section class="page preset-editor">
    <header class="page-header">
      <a class="back" href=${hrefs.presets()} aria-label="All presets">‹</a>
      <h2>${creating ? 'New preset' : `Edit preset ${presetId}`}</h2>
    </header>
    <form onSubmit=${save} novalidate>
      ${general && html`<p class="form-error" role="alert">${general}</p>`}
      <${FieldError} errors=${errors} name="general" />
      ${creating && html`<div class="field">
        <label for="preset-id">Id</label>
        <input id="preset-id" name="preset_id" type="text" value=${form.preset_id} onInput=${set('preset_id')}
          placeholder="a-z, 0-9, - and _" autocomplete="off" ...${invalid('preset_id')} />
        <${FieldError} errors=${errors} name="preset_id" />
      </div>`}
      <div class="field">
        <label for="preset-name">Name</label>
        <input id="preset-name" name="name" type="text" value=${form.name} onInput=${set('name')} ...${invalid('name')} />
        <${FieldError} errors=${errors} name="name" />
      </div>
      <div class="field">
        <label for="preset-description">Description</label>
        <textarea id="preset-description" name="description" rows="2" value=${form.description}
          onInput=${set('description')} ...${invalid('description')}></textarea>
        <${FieldError} errors=${errors} name="description" />
      </div>
      <fieldset class="field">
        <legend>Model</legend>
        <label for="preset-model">Model name</label>
        <input id="preset-model" name="model" type="text" list="model-suggestions" value=${form.model}
          onInput=${set('model')} placeholder="provider:model" ...${invalid('model')} />
        <datalist id="model-suggestions">${MODEL_SUGGESTIONS.map((m) => html`<option value=${m} key=${m}></option>`)}</datalist>
        <p class="muted small"><code>openai:…</code>, <code>anthropic:…</code>, <code>gateway@provider:model</code>, or the
          built-in <code>test:echo</code> / <code>${'test:call:<tool>'}</code>.</p>
        <${FieldError} errors=${errors} name="model" />
        <div class="row wrap">
          <label>Temperature <input type="number" step="0.1" min="0" max="2" value=${form.temperature}
            onInput=${set('temperature')} ...${invalid('temperature')} /></label>
          <label>Max tokens <input type="number" min="1" value=${form.max_tokens} onInput=${set('max_tokens')}
            ...${invalid('max_tokens')} /></label>
          <label>Context window <input type="number" min="1" value=${form.context_window}
            onInput=${set('context_window')} ...${invalid('context_window')} /></label>
        </div>
        <${FieldError} errors=${errors} name="temperature" />
        <${FieldError} errors=${errors} name="max_tokens" />
        <${FieldError} errors=${errors} name="context_window" />
      </fieldset>
      <div class="field">
        <label for="preset-system-prompt">System prompt</label>
        <textarea id="preset-system-prompt" name="system_prompt" rows="6" class="mono" value=${form.system_prompt}
          onInput=${set('system_prompt')} ...${invalid('system_prompt')}></textarea>
        <p class="muted small">A minijinja template.</p>
        <${FieldError} errors=${errors} name="system_prompt" />
      </div>
      <fieldset class="field toolsets" ...${invalid('toolsets')}>
        <legend>Toolsets</legend>
        ${TOOLSETS.map(([name, tools]) => {
          const t = form.toolsets[name] || { on: false, exclude: '' };
          return html`<div class="toolset" key=${name}>
            <label class="inline"><input type="checkbox" name=${`toolset-${name}`} checked=${t.on}
              onChange=${(e) => setToolset(name, { on: e.currentTarget.checked })} />
              <strong>${name}</strong> <span class="muted small">${tools}</span></label>
            ${t.on && html`<label class="exclude">Except
              <input type="text" value=${t.exclude} placeholder="tools to leave out, comma-separated"
                onInput=${(e) => setToolset(name, { exclude: e.currentTarget.value })} /></label>`}
          </div>`;
        })}
        <${FieldError} errors=${errors} name="toolsets" />
      </fieldset>
      <div class="field">
        <label for="preset-approval">Tools that need approval</label>
        <input id="preset-approval" name="require_approval" type="text" value=${form.require_approval}
          onInput=${set('require_approval')} placeholder="e.g. shell, write" ...${invalid('require_approval')} />
        <${FieldError} errors=${errors} name="require_approval" />
      </div>
      <div class="field">
        <label class="inline"><input type="checkbox" name="is_default" checked=${form.is_default}
          onChange=${(e) => setForm({ ...form, is_default: e.currentTarget.checked })} /> Default preset (new conversations start with it)</label>
      </div>
      <div class="field">
        <label for="preset-advanced">Environment and subagents (JSON)</label>
        <textarea id="preset-advanced" name="advanced" rows="10" class="mono" spellcheck="false" value=${form.advanced}
          onInput=${set('advanced')} ...${invalid('advanced')}></textarea>
        <p class="muted small"><code>environment</code>: shell_mode, default_path, allowed_paths, env_allow, sandbox…;
          <code>subagents</code>: refs, include_builtin, async_enabled.</p>
        <${FieldError} errors=${errors} name="advanced" />
      </div>
      <div class="row">
        <button type="submit" class="primary" disabled=${saving}>${saving ? 'Saving…' : creating ? 'Create preset' : 'Save'}</button>
        <a class="button secondary" href=${hrefs.presets()}>Cancel</a>
      </div>
    </form>
  </section>`;
}
