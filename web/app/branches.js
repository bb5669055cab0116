// Branches. Sessions form a DAG: each links to its parent, a continue adds a child to the
// head, and a fork (POST …/fork) starts a *new conversation* whose root session's parent is
// the session it forked from, in the original conversation. So:
// - the history before a fork lives in the original: `lineage` walks up from a fork and
//   collects the ancestor turns it inherited, to show above its own;
// - a conversation's branches are the leaves of the DAG over the whole family: the
//   original, its forks, their forks… A Conversation does not say what it was forked from,
//   but its id is its root session's id, and that session's parent says. The forks of a
//   conversation are found among the conversations this page has loaded (the sidebar's).
import { html, useEffect, useState } from './html.js';
import { api, errorText } from './api.js';
import { loadedConversations } from './state.js';
import { hrefs } from './router.js';
import { conversationTitle, mapLimit, shortId } from './util.js';

/** conversation id -> Promise<{sessionId, conversationId} | null>: what it was forked from. */
const origins = new Map();

/** What a conversation was forked from (null for an original). Never changes: cached. */
export function originOf(conversationId) {
  if (!origins.has(conversationId)) {
    const p = (async () => {
      try {
        const root = await api.sessions.get(conversationId, false);
        if (!root.parent_session_id) return null;
        const parent = await api.sessions.get(root.parent_session_id, false);
        if (parent.conversation_id === conversationId) return null;
        return { sessionId: parent.session_id, conversationId: parent.conversation_id };
      } catch {
        origins.delete(conversationId); // not cached: try again next time
        return null;
      }
    })();
    origins.set(conversationId, p);
  }
  return origins.get(conversationId);
}

/** The ancestors of `sessionId` (itself included) in `sessions`, oldest first. */
export function chainOf(sessionId, sessions) {
  const byId = new Map(sessions.map((s) => [s.session_id, s]));
  const chain = [];
  const seen = new Set();
  for (let s = byId.get(sessionId); s && !seen.has(s.session_id); s = byId.get(s.parent_session_id)) {
    seen.add(s.session_id);
    chain.unshift(s);
  }
  return chain;
}

/** conversation id -> Promise of its lineage (the inherited part never changes: cached) */
const lineages = new Map();

/**
 * The turns a fork inherited: for each ancestor conversation, oldest first, the turns of
 * the chain that ends at the fork point. [] for an original.
 * @returns {Promise<{conversation: any, forkedAt: string, turns: any[]}[]>}
 */
export function lineageOf(conversationId) {
  if (!lineages.has(conversationId)) {
    const p = (async () => {
      const out = [];
      let current = conversationId;
      for (let depth = 0; depth < 8; depth++) {
        const origin = await originOf(current);
        if (!origin) break;
        const [conversation, sessions, turns] = await Promise.all([
          api.conversations.get(origin.conversationId),
          api.conversations.sessions(origin.conversationId),
          api.conversations.turns(origin.conversationId),
        ]);
        const chain = new Set(chainOf(origin.sessionId, sessions).map((s) => s.session_id));
        out.unshift({
          conversation,
          forkedAt: origin.sessionId,
          turns: turns.filter((t) => chain.has(t.session_id)),
          sessions,
        });
        current = origin.conversationId;
      }
      return out;
    })();
    p.catch(() => lineages.delete(conversationId));
    lineages.set(conversationId, p);
  }
  return lineages.get(conversationId);
}

/** The family's root conversation: follow the origins up. */
async function familyRoot(conversationId) {
  let current = conversationId;
  for (let depth = 0; depth < 16; depth++) {
    const origin = await originOf(current);
    if (!origin) return current;
    current = origin.conversationId;
  }
  return current;
}

/**
 * Every branch of the family: one per leaf of the session DAG (a session with no
 * non-failed agent child), with its conversation, depth in turns and fork point.
 */
export async function loadBranches(conversationId) {
  const rootId = await familyRoot(conversationId);
  // Candidates: every conversation this page has loaded, plus the two we know about.
  const candidates = new Map(loadedConversations.get().map((c) => [c.conversation_id, c]));
  const members = new Map(); // id -> {conversation, origin}
  const isMember = async (id, seen = new Set()) => {
    if (id === rootId) return true;
    if (seen.has(id)) return false;
    seen.add(id);
    const origin = await originOf(id);
    return origin ? isMember(origin.conversationId, seen) : false;
  };
  const ids = [...new Set([rootId, conversationId, ...candidates.keys()])];
  await mapLimit(ids, 4, async (id) => {
    if (await isMember(id)) members.set(id, { origin: await originOf(id) });
  });
  const loaded = await mapLimit([...members.keys()], 4, async (id) => {
    const [conversation, sessions] = await Promise.all([
      candidates.get(id) && id !== conversationId ? candidates.get(id) : api.conversations.get(id),
      api.conversations.sessions(id),
    ]);
    return { id, conversation, sessions: sessions.filter((s) => s.session_type === 'agent') };
  });
  const all = new Map();
  const convOf = new Map();
  for (const { id, conversation, sessions } of loaded) {
    convOf.set(id, conversation);
    for (const s of sessions) all.set(s.session_id, s);
  }
  const hasChild = new Set();
  for (const s of all.values()) {
    if (s.parent_session_id && s.status !== 'failed') hasChild.add(s.parent_session_id);
  }
  const depth = (s, guard = 0) => {
    const parent = all.get(s.parent_session_id);
    return parent && guard < 10000 ? 1 + depth(parent, guard + 1) : 1;
  };
  // The session a plain "continue" of each conversation extends: its newest committed or
  // awaiting agent session (links to other leaves name the head explicitly).
  const latest = new Map();
  for (const s of all.values()) {
    if (s.status !== 'committed' && s.status !== 'awaiting_tool_results') continue;
    const cur = latest.get(s.conversation_id);
    if (!cur || s.created_at > cur.created_at) latest.set(s.conversation_id, s);
  }
  const branches = [];
  for (const s of all.values()) {
    if (hasChild.has(s.session_id) || s.status === 'failed') continue;
    const origin = members.get(s.conversation_id)?.origin;
    branches.push({
      conversationId: s.conversation_id,
      conversation: convOf.get(s.conversation_id),
      head: s,
      isLatest: latest.get(s.conversation_id)?.session_id === s.session_id || !latest.has(s.conversation_id),
      turns: depth(s),
      forkedAt: origin ? { sessionId: origin.sessionId, turn: all.has(origin.sessionId) ? depth(all.get(origin.sessionId)) : null } : null,
    });
  }
  // Originals first, then by fork point and age.
  branches.sort((a, b) => (a.forkedAt ? 1 : 0) - (b.forkedAt ? 1 : 0) || a.head.created_at.localeCompare(b.head.created_at));
  return branches;
}

/** The branch list, loaded when opened. */
export function Branches({ conversationId, headId, version }) {
  const [open, setOpen] = useState(false);
  const [state, setState] = useState({ loading: false, branches: null, error: '' });

  useEffect(() => {
    if (!open) return undefined;
    let cancelled = false;
    setState((s) => ({ ...s, loading: true, error: '' }));
    loadBranches(conversationId)
      .then((branches) => !cancelled && setState({ loading: false, branches, error: '' }))
      .catch((err) => !cancelled && setState({ loading: false, branches: null, error: errorText(err) }));
    return () => {
      cancelled = true;
    };
  }, [open, conversationId, version]);

  return html`<details class="panel branches" onToggle=${(e) => setOpen(e.currentTarget.open)}>
    <summary><h3>Branches</h3>${state.branches && html` <span class="badge">${state.branches.length}</span>`}</summary>
    ${state.loading && !state.branches && html`<p class="muted">Loading…</p>`}
    ${state.error && html`<p class="form-error">${state.error}</p>`}
    ${state.branches && html`<ul class="branch-list">
      ${state.branches.map((b) => {
        const here = b.conversationId === conversationId && b.head.session_id === headId;
        const href = hrefs.conversation(b.conversationId, b.isLatest ? undefined : b.head.session_id);
        return html`<li class=${`branch${here ? ' current' : ''}`} key=${b.head.session_id}>
          <a href=${href} aria-current=${here ? 'page' : undefined}>${conversationTitle(b.conversation)}</a>
          <span class="muted">
            ${b.turns} turn${b.turns === 1 ? '' : 's'} · head ${shortId(b.head.session_id)}
            ${b.head.status !== 'committed' ? ` · ${b.head.status.replace(/_/g, ' ')}` : ''}
            ${b.forkedAt ? ` · forked at ${b.forkedAt.turn ? `turn ${b.forkedAt.turn}` : shortId(b.forkedAt.sessionId)}` : ''}
          </span>
          ${here && html`<span class="badge">viewing</span>`}
        </li>`;
      })}
    </ul>`}
  </details>`;
}
