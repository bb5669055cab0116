#!/usr/bin/env node
// A development server for web/ without rebuilding the service: serves web/ the way the
// binary does (index.html at / with %ASSETS% replaced, the files under /assets/dev/…, the
// same Content-Security-Policy) and proxies /api and /docs to a running service. Files are
// read on every request, so an edit shows on reload.
//
//   node scripts/web/serve.mjs --api http://127.0.0.1:8000 [--port 8080]
//
// The service's own binary serves web/ itself; this is only for working on the UI against
// an older binary or a remote service.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const API = new URL(opt('api', 'http://127.0.0.1:8000'));
const PORT = Number(opt('port', '8080'));
const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
const PREFIX = '/assets/dev';
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
  "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
  "frame-ancestors 'none'";
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.map': 'application/json', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

function proxy(req, res) {
  const upstream = http.request({
    host: API.hostname, port: API.port, method: req.method, path: req.url,
    headers: { ...req.headers, host: API.host },
  }, (up) => {
    res.writeHead(up.statusCode, up.headers);
    up.pipe(res);
  });
  upstream.on('error', (e) => {
    res.writeHead(502, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'unavailable', message: `dev proxy: ${e.message}` }));
  });
  req.pipe(upstream);
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/docs')) return proxy(req, res);
  const headers = { 'content-security-policy': CSP, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
  try {
    if (url.pathname === '/') {
      const page = (await readFile(path.join(WEB, 'index.html'), 'utf8')).replaceAll('%ASSETS%', PREFIX);
      res.writeHead(200, { ...headers, 'content-type': TYPES['.html'] });
      return res.end(page);
    }
    if (url.pathname.startsWith(`${PREFIX}/`)) {
      const rel = path.normalize(decodeURIComponent(url.pathname.slice(PREFIX.length + 1)));
      const type = TYPES[path.extname(rel)];
      if (!rel.startsWith('..') && !rel.split(path.sep).some((p) => p.startsWith('.')) && type) {
        const body = await readFile(path.join(WEB, rel));
        res.writeHead(200, { ...headers, 'content-type': type });
        return res.end(body);
      }
    }
  } catch {
    // fall through: 404
  }
  res.writeHead(404, headers);
  res.end();
});
server.listen(PORT, '127.0.0.1', () => console.log(`web/ on http://127.0.0.1:${PORT}, API from ${API.origin}`));
