// State several views share, kept in memory only (nothing in localStorage, sessionStorage
// or URLs: the session cookie is the only credential and the page cannot read it).
import { api, errorText } from './api.js';
import { createStore } from './store.js';
import { newId } from './util.js';

/** 'unknown' until the first API answer, then 'in' or 'out'. */
export const auth = createStore('unknown');

/** The presets, by id order (as the API lists them); null until loaded. */
export const presets = createStore(/** @type {any[] | null} */ (null));

export async function reloadPresets() {
  const list = await api.presets.list();
  presets.set(list);
  return list;
}

/** Bumped whenever a conversation's title, status or activity changed: lists refetch. */
export const conversationsChanged = createStore(0);
export const touchConversations = () => conversationsChanged.set((n) => n + 1);

/** Conversations loaded by the sidebar (for the branch view's fork discovery). */
export const loadedConversations = createStore(/** @type {any[]} */ ([]));

/** Passing messages: [{id, kind: 'error'|'info', text}]. */
export const toasts = createStore(/** @type {{id: string, kind: string, text: string}[]} */ ([]));

export function toast(text, kind = 'info') {
  const id = newId();
  toasts.set((list) => [...list, { id, kind, text }]);
  setTimeout(() => dismissToast(id), kind === 'error' ? 8000 : 4000);
}

export const toastError = (err) => toast(errorText(err), 'error');
export const dismissToast = (id) => toasts.set((list) => list.filter((t) => t.id !== id));

/**
 * What this page knows about runs it watched, which the stored session does not say:
 * the user's text of a run still going (the transcript has it only once the run ends) and
 * why a run stopped (a Session has no stop_reason). Lost on reload, by design.
 * @type {Map<string, {userText?: string, stopReason?: string, message?: string}>}
 */
export const runNotes = new Map();

export function noteRun(sessionId, note) {
  runNotes.set(sessionId, { ...(runNotes.get(sessionId) || {}), ...note });
}
