// Hash routing: every view has a bookmarkable URL and the server only ever serves `/`.
//   #/                          the conversation list (home)
//   #/new                       a new conversation
//   #/conversations/{id}        a conversation (#/conversations/{id}/head/{session} shows
//                               another branch of it)
//   #/presets, #/presets/{id}, #/new-preset
//   #/sign-in
import { useEffect, useState } from './html.js';

/** @returns {{name: string, params: Record<string, string>}} */
export function parseHash(hash) {
  const path = (hash || '').replace(/^#/, '').replace(/^\/+/, '');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const [a, b, c, d] = parts;
  if (!a) return { name: 'home', params: {} };
  if (a === 'new' && !b) return { name: 'new', params: {} };
  if (a === 'sign-in') return { name: 'signin', params: {} };
  if (a === 'conversations' && b && !c) return { name: 'chat', params: { id: b } };
  if (a === 'conversations' && b && c === 'head' && d) return { name: 'chat', params: { id: b, head: d } };
  if (a === 'presets' && !b) return { name: 'presets', params: {} };
  if (a === 'presets' && b && !c) return { name: 'preset', params: { id: b } };
  if (a === 'new-preset') return { name: 'new-preset', params: {} };
  return { name: 'notfound', params: {} };
}

export const hrefs = {
  home: () => '#/',
  newConversation: () => '#/new',
  conversation: (id, head) =>
    `#/conversations/${encodeURIComponent(id)}${head ? `/head/${encodeURIComponent(head)}` : ''}`,
  presets: () => '#/presets',
  preset: (id) => `#/presets/${encodeURIComponent(id)}`,
  newPreset: () => '#/new-preset',
  signIn: () => '#/sign-in',
};

export function navigate(hash, { replace = false } = {}) {
  if (location.hash === hash) return;
  if (replace) {
    history.replaceState(null, '', hash);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = hash;
  }
}

/** The current route; re-renders on every hash change. */
export function useRoute() {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseHash(location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
