// Small helpers without a better home: ids, dates, titles, sizes, files.

/**
 * A random id (hex). crypto.randomUUID needs a secure context, which a homelab page on
 * http://192.168.x.y is not; getRandomValues works everywhere.
 */
export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The last 8 characters of an id, for labels (ids are UUIDv7: their start is a time). */
export const shortId = (id) => (id ? String(id).slice(-8) : '');

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });

export function formatDateTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : dateTime.format(d);
}

/** "14:02" today, "3 Dec 2025" otherwise: short labels for lists. */
export function formatWhen(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const now = new Date();
  return d.toDateString() === now.toDateString() ? timeOnly.format(d) : dateOnly.format(d);
}

/** What a conversation is called in lists and headings. */
export function conversationTitle(conv) {
  const title = conv?.title?.trim();
  return title || `Untitled · ${formatDateTime(conv?.created_at)}`;
}

/** A title from the first user text: its first non-empty line, at most 80 characters. */
export function titleFromText(text) {
  const line = (text || '').split('\n').map((l) => l.trim()).find((l) => l) || '';
  return line.length > 80 ? `${line.slice(0, 79).trimEnd()}…` : line;
}

export function humanSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function formatDuration(ms) {
  if (ms == null) return '';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function formatTokens(usage) {
  if (!usage) return '';
  const n = usage.total_tokens ?? 0;
  return `${n >= 1000 ? `${(n / 1000).toFixed(1)}k` : n} tokens`;
}

/** A file's contents as base64 (no data: prefix), for a `binary` input part. */
export function fileToBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(',') + 1));
    };
    reader.onerror = () => reject(reader.error || new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

/** JSON text pretty-printed when it parses, else as it came. */
export function prettyJson(text) {
  if (typeof text !== 'string') return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** Runs `fn` over `items` with at most `limit` at once; results in order. */
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
