// The conversation list: newest activity first (the API's order), active or archived,
// filtered by title as you type (over what is loaded; "Load more" fetches the next page).
import { html, useEffect, useRef, useState } from './html.js';
import { api, errorText } from './api.js';
import { hrefs } from './router.js';
import { conversationsChanged, loadedConversations } from './state.js';
import { useStore } from './store.js';
import { conversationTitle, formatWhen } from './util.js';

const PAGE = 50;

export function ConversationList({ currentId }) {
  const [status, setStatus] = useState('active');
  const [query, setQuery] = useState('');
  const [items, setItems] = useState(/** @type {any[]} */ ([]));
  const [more, setMore] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState('');
  const changed = useStore(conversationsChanged);
  const seq = useRef(0);
  const loadedCount = useRef(0);

  /** Loads (or reloads) the first `count` conversations. */
  const load = async (count) => {
    const mine = ++seq.current;
    setLoading(true);
    try {
      const limit = Math.min(Math.max(count, PAGE), 100);
      const list = await api.conversations.list({ status, limit, offset: 0 });
      if (mine !== seq.current) return;
      setItems(list);
      loadedCount.current = list.length;
      setMore(list.length === limit);
      setError('');
    } catch (err) {
      if (mine === seq.current) setError(errorText(err));
    } finally {
      if (mine === seq.current) setLoading(false);
    }
  };

  const loadMore = async () => {
    const mine = ++seq.current;
    setLoading(true);
    try {
      const page = await api.conversations.list({ status, limit: PAGE, offset: items.length });
      if (mine !== seq.current) return;
      const known = new Set(items.map((c) => c.conversation_id));
      const next = [...items, ...page.filter((c) => !known.has(c.conversation_id))];
      setItems(next);
      loadedCount.current = next.length;
      setMore(page.length === PAGE);
    } catch (err) {
      if (mine === seq.current) setError(errorText(err));
    } finally {
      if (mine === seq.current) setLoading(false);
    }
  };

  useEffect(() => {
    loadedCount.current = 0;
    load(PAGE);
  }, [status]);
  useEffect(() => {
    if (changed) load(loadedCount.current);
  }, [changed]);
  useEffect(() => {
    loadedConversations.set(items);
  }, [items]);

  const needle = query.trim().toLowerCase();
  const shown = needle ? items.filter((c) => conversationTitle(c).toLowerCase().includes(needle)) : items;

  return html`<nav class="sidebar" aria-label="Conversations">
    <a class="button primary new-button" href=${hrefs.newConversation()}>New conversation</a>
    <div class="list-tools">
      <label class="visually-hidden" for="conversation-search">Search titles</label>
      <input id="conversation-search" type="search" placeholder="Search titles" value=${query}
        onInput=${(e) => setQuery(e.currentTarget.value)} />
      <div class="segmented" role="group" aria-label="Which conversations">
        <button type="button" aria-pressed=${status === 'active'} onClick=${() => setStatus('active')}>Active</button>
        <button type="button" aria-pressed=${status === 'archived'} onClick=${() => setStatus('archived')}>Archived</button>
      </div>
    </div>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <ul class="conversation-list">
      ${shown.map((c) => html`<li key=${c.conversation_id}>
        <a href=${hrefs.conversation(c.conversation_id)} class="conversation-link"
          aria-current=${c.conversation_id === currentId ? 'page' : undefined}
          data-conversation=${c.conversation_id}>
          <span class="conversation-title">${conversationTitle(c)}</span>
          <span class="conversation-when">${formatWhen(c.updated_at)}</span>
        </a>
      </li>`)}
    </ul>
    ${!loading && shown.length === 0 && html`<p class="muted pad">
      ${needle ? 'No loaded conversation matches.' : status === 'archived' ? 'Nothing archived.' : 'No conversations yet.'}</p>`}
    ${more && html`<button type="button" class="secondary load-more" onClick=${loadMore} disabled=${loading}>
      ${loading ? 'Loading…' : 'Load more'}</button>`}
    ${loading && !more && items.length === 0 && html`<p class="muted pad">Loading…</p>`}
  </nav>`;
}
