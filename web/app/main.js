// The app: sign-in gate, top bar, conversation list beside the current view, toasts.
import { html, render, useEffect, useErrorBoundary } from './html.js';
import { api, ApiError, errorText, onUnauthorized } from './api.js';
import { ChatView, NewConversation } from './chat.js';
import { ConversationList } from './conversations.js';
import { HealthIndicator } from './health.js';
import { PresetEditor, PresetList } from './presets.js';
import { hrefs, navigate, useRoute } from './router.js';
import { SignIn } from './signin.js';
import { auth, dismissToast, presets, reloadPresets, toastError, toasts } from './state.js';
import { createStore, useStore } from './store.js';

/** Where to go back to after signing in (the view a 401 interrupted). */
let returnTo = null;
const bootError = createStore('');

/** To the sign-in page, coming back to the current view afterwards. */
function signedOut() {
  const hash = location.hash;
  if (!hash.startsWith('#/sign-in')) returnTo = hash || hrefs.home();
  auth.set('out');
  presets.set(null);
  navigate(hrefs.signIn(), { replace: true });
}

onUnauthorized(signedOut);

/**
 * Signed in? The cookie is HttpOnly: ask the API, which answers either way (a signed-out
 * start is no 401), then load the presets every view needs.
 */
function probe() {
  bootError.set('');
  api
    .signedIn()
    .then(async (signedIn) => {
      if (!signedIn) {
        signedOut();
        return;
      }
      await reloadPresets();
      auth.set('in');
      // Already signed in (the cookie still works): the sign-in page has nothing to do.
      if (location.hash.startsWith('#/sign-in')) navigate(hrefs.home(), { replace: true });
    })
    .catch((err) => {
      if (!(err instanceof ApiError && err.status === 401)) bootError.set(errorText(err));
    });
}

function Toasts() {
  const list = useStore(toasts);
  return html`<div class="toasts" role="status" aria-live="polite">
    ${list.map((t) => html`<div key=${t.id} class=${`toast toast-${t.kind}`}>
      <span>${t.text}</span>
      <button type="button" class="link" aria-label="Dismiss" onClick=${() => dismissToast(t.id)}>×</button>
    </div>`)}
  </div>`;
}

function TopBar({ route }) {
  const logout = async () => {
    try {
      await api.logout();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) toastError(err);
    }
    returnTo = null;
    auth.set('out');
    presets.set(null);
    navigate(hrefs.signIn());
  };
  const inPresets = route.name === 'presets' || route.name === 'preset' || route.name === 'new-preset';
  return html`<header class="topbar">
    <a class="skip-link" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
    <a class="brand" href=${hrefs.home()}>agent-runtime</a>
    <nav class="topnav" aria-label="Sections">
      <a href=${hrefs.home()} aria-current=${!inPresets ? 'page' : undefined}>Conversations</a>
      <a href=${hrefs.presets()} aria-current=${inPresets ? 'page' : undefined}>Presets</a>
    </nav>
    <span class="spacer"></span>
    <${HealthIndicator} />
    <button type="button" class="secondary signout" onClick=${logout}>Sign out</button>
  </header>`;
}

function Home() {
  return html`<section class="empty-state">
    <h2>Conversations</h2>
    <p class="muted">Open one from the list, or <a href=${hrefs.newConversation()}>start a new one</a>.</p>
  </section>`;
}

function View({ route }) {
  switch (route.name) {
    case 'home':
      return html`<${Home} />`;
    case 'new':
      return html`<${NewConversation} />`;
    case 'chat':
      return html`<${ChatView} key=${route.params.id} conversationId=${route.params.id} headParam=${route.params.head} />`;
    case 'presets':
      return html`<${PresetList} />`;
    case 'preset':
      return html`<${PresetEditor} key=${route.params.id} presetId=${route.params.id} />`;
    case 'new-preset':
      return html`<${PresetEditor} key="new" />`;
    default:
      return html`<section class="empty-state"><p>There is nothing here. <a href=${hrefs.home()}>Conversations</a></p></section>`;
  }
}

function App() {
  const route = useRoute();
  const state = useStore(auth);
  const failure = useStore(bootError);
  const [crash, resetCrash] = useErrorBoundary();

  useEffect(probe, []);
  useEffect(() => {
    if (state === 'out' && route.name !== 'signin') navigate(hrefs.signIn(), { replace: true });
  }, [state, route.name]);

  if (route.name === 'signin' || state === 'out') {
    const signedIn = () => {
      auth.set('in');
      reloadPresets().catch(() => {});
      const target = returnTo || hrefs.home();
      returnTo = null;
      navigate(target === hrefs.signIn() ? hrefs.home() : target);
    };
    return html`<${SignIn} onSignedIn=${signedIn} />`;
  }
  if (state === 'unknown') {
    return html`<main class="splash">
      ${failure
        ? html`<p class="form-error" role="alert">${failure}</p><button type="button" class="primary" onClick=${probe}>Try again</button>`
        : html`<p class="muted">Loading…</p>`}
    </main>`;
  }
  const currentId = route.name === 'chat' ? route.params.id : null;
  return html`<div class="app" data-view=${route.name}>
    <${TopBar} route=${route} />
    <div class="layout">
      <${ConversationList} currentId=${currentId} />
      <main id="main" class="main" tabindex="-1">
        ${crash
          ? html`<section class="empty-state"><p class="form-error" role="alert">This view failed: ${String(crash.message || crash)}</p>
              <button type="button" class="primary" onClick=${resetCrash}>Try again</button></section>`
          : html`<${View} route=${route} />`}
      </main>
    </div>
    <${Toasts} />
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
