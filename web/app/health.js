// The health indicator: GET /api/health (no credentials needed) every 30 s; its details
// list each backend and the service's version (the API document's info.version).
import { html, useEffect, useState } from './html.js';
import { api } from './api.js';

const POLL_MS = 30_000;

function label(health) {
  if (!health) return 'checking…';
  if (health.status === 'ok') return 'healthy';
  return health.status || 'unreachable';
}

export function HealthIndicator() {
  const [health, setHealth] = useState(null);
  const [version, setVersion] = useState('');
  const [open, setOpen] = useState(false);

  useEffect(() => {
    let stopped = false;
    const check = () =>
      api.health()
        .then((h) => !stopped && setHealth(h))
        .catch(() => !stopped && setHealth({ status: 'unreachable' }));
    check();
    const timer = setInterval(check, POLL_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);

  // The version is in the API document (~270 KB): fetched once, when first asked for.
  useEffect(() => {
    if (!open || version) return undefined;
    let stopped = false;
    api.document().then((d) => !stopped && setVersion(d?.info?.version || '?')).catch(() => !stopped && setVersion('?'));
    return () => {
      stopped = true;
    };
  }, [open]);

  const status = health?.status || 'unknown';
  const rows = health && health.database
    ? [['Database', health.database], ['Event bus', health.event_bus], ['State store', health.state_store], ['Sandbox', health.sandbox]]
    : [];
  return html`<div class="health">
    <button type="button" class="health-button" aria-expanded=${open} aria-controls="health-details"
      onClick=${() => setOpen(!open)} title=${`Service ${label(health)}`}>
      <span class=${`dot dot-${status}`} aria-hidden="true"></span>
      <span class="health-label">${label(health)}</span>
    </button>
    ${open && html`<div class="health-details" id="health-details">
      <dl>
        ${rows.map(([k, v]) => html`<div key=${k}><dt>${k}</dt><dd class=${`state-${v}`}>${v}</dd></div>`)}
        <div><dt>Version</dt><dd>${version || '…'}</dd></div>
      </dl>
      <p class="small"><a href="/docs" target="_blank" rel="noopener noreferrer">API documentation</a></p>
    </div>`}
  </div>`;
}
