// A tiny observable value, for the few things several views share (sign-in state,
// presets, the conversation list's "changed" counter, toasts). Views read it with useStore.
import { useEffect, useReducer } from './html.js';

/**
 * @template T
 * @param {T} initial
 */
export function createStore(initial) {
  let value = initial;
  const subscribers = new Set();
  return {
    /** @returns {T} */
    get: () => value,
    /** @param {T | ((old: T) => T)} next */
    set(next) {
      value = typeof next === 'function' ? next(value) : next;
      for (const fn of [...subscribers]) fn(value);
    },
    /** @param {(value: T) => void} fn */
    subscribe(fn) {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
  };
}

/** Re-renders the calling component whenever the store changes; returns its value. */
export function useStore(store) {
  const [, bump] = useReducer((n) => n + 1, 0);
  useEffect(() => store.subscribe(() => bump()), [store]);
  return store.get();
}
