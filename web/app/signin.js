// Sign-in: the service's token buys an HttpOnly session cookie (POST /api/auth/session).
// The token is not kept anywhere by the page; the field is cleared once it is used.
import { html, useEffect, useRef, useState } from './html.js';
import { api, ApiError, errorText } from './api.js';

export function SignIn({ onSignedIn }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const field = useRef(null);
  useEffect(() => field.current?.focus(), []);

  const submit = async (e) => {
    e.preventDefault();
    if (!token.trim()) {
      setError('Enter the service token.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      await api.signIn(token.trim());
      setToken('');
      onSignedIn();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401
        ? 'That is not the service’s token.'
        : errorText(err));
      field.current?.select();
    } finally {
      setBusy(false);
    }
  };

  return html`<main class="signin">
    <form class="signin-card" onSubmit=${submit}>
      <h1>agent-runtime</h1>
      <p class="muted">Sign in with the service's token (<code>AUTH_TOKEN</code>, or the one in
        <code>data/auth_token</code>).</p>
      <label for="token">Token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" ref=${field}
        value=${token} onInput=${(e) => setToken(e.currentTarget.value)}
        aria-invalid=${error ? 'true' : undefined} aria-describedby=${error ? 'signin-error' : undefined} />
      ${error && html`<p class="form-error" id="signin-error" role="alert">${error}</p>`}
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </main>`;
}
