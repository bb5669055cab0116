// Markdown of model and tool output: marked → DOMPurify → highlighted code. Everything a
// model wrote is hostile:
// - raw HTML in the markdown is shown as text, not rendered;
// - DOMPurify sanitizes the result (no scripts, handlers, forms, styles, iframes…);
// - links keep only http, https and mailto targets and open in a new tab without referrer;
// - images load only from data: URLs or this origin (the page's CSP blocks the rest too):
//   a remote image would send the conversation to whoever serves it, so it becomes a
//   plain link the user may choose to follow.
import { Marked } from '../vendor/marked.esm.js';
import DOMPurify from '../vendor/purify.es.mjs';
import hljs from '../vendor/highlight/core.min.js';
import bash from '../vendor/highlight/languages/bash.min.js';
import shell from '../vendor/highlight/languages/shell.min.js';
import json from '../vendor/highlight/languages/json.min.js';
import javascript from '../vendor/highlight/languages/javascript.min.js';
import typescript from '../vendor/highlight/languages/typescript.min.js';
import python from '../vendor/highlight/languages/python.min.js';
import rust from '../vendor/highlight/languages/rust.min.js';
import go from '../vendor/highlight/languages/go.min.js';
import yaml from '../vendor/highlight/languages/yaml.min.js';
import diff from '../vendor/highlight/languages/diff.min.js';
import sql from '../vendor/highlight/languages/sql.min.js';
import xml from '../vendor/highlight/languages/xml.min.js';

for (const [name, lang] of Object.entries({
  bash, shell, json, javascript, typescript, python, rust, go, yaml, diff, sql, xml,
})) {
  hljs.registerLanguage(name, lang);
}
hljs.configure({ ignoreUnescapedHTML: true });

export function escapeHtml(text) {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** An image source the page may load: inline data, or this origin. */
function isLocalImage(href) {
  if (/^data:image\//i.test(href)) return true;
  try {
    return new URL(href, location.href).origin === location.origin;
  } catch {
    return false;
  }
}

function isSafeLink(href) {
  try {
    const url = new URL(href, location.href);
    return ['http:', 'https:', 'mailto:'].includes(url.protocol);
  } catch {
    return false;
  }
}

/** Highlighted HTML of a code block (hljs escapes the text itself). */
export function highlight(code, lang) {
  const language = (lang || '').trim().split(/\s+/)[0].toLowerCase();
  try {
    if (language && hljs.getLanguage(language)) {
      return hljs.highlight(code, { language, ignoreIllegals: true }).value;
    }
  } catch {
    // fall through to plain text
  }
  return escapeHtml(code);
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    html({ text }) {
      return escapeHtml(text);
    },
    code({ text, lang }) {
      const language = (lang || '').trim().split(/\s+/)[0];
      const label = language ? `<span class="code-lang">${escapeHtml(language)}</span>` : '';
      return `<pre class="code">${label}<code class="hljs">${highlight(text, language)}</code></pre>\n`;
    },
    image({ href, title, text }) {
      if (href && isLocalImage(href)) {
        const t = title ? ` title="${escapeHtml(title)}"` : '';
        return `<img src="${escapeHtml(href)}" alt="${escapeHtml(text || '')}"${t}>`;
      }
      const label = `image: ${text || href || ''}`;
      if (href && isSafeLink(href)) return `<a href="${escapeHtml(href)}">${escapeHtml(label)}</a>`;
      return `<span>[${escapeHtml(label)}]</span>`;
    },
  },
});

const purifier = DOMPurify(window);
purifier.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    const href = node.getAttribute('href');
    if (!href || !isSafeLink(href)) {
      node.removeAttribute('href');
    } else {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer nofollow');
    }
  }
  if (node.tagName === 'IMG') {
    const src = node.getAttribute('src');
    if (!src || !isLocalImage(src)) node.removeAttribute('src');
    node.setAttribute('loading', 'lazy');
  }
});

const PURIFY_OPTIONS = {
  USE_PROFILES: { html: true },
  // No inline styles (the CSP refuses them anyway), no forms, no embedded documents.
  FORBID_ATTR: ['style', 'srcset', 'action', 'formaction'],
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed', 'svg', 'math'],
  ALLOW_DATA_ATTR: false,
};

/** Markdown to sanitized HTML. */
export function renderMarkdown(text) {
  let raw;
  try {
    raw = marked.parse(String(text ?? ''), { async: false });
  } catch {
    raw = `<pre>${escapeHtml(text)}</pre>`;
  }
  return purifier.sanitize(raw, PURIFY_OPTIONS);
}

/** Sanitized highlighted HTML of a code snippet (tool args). */
export function renderCode(text, lang) {
  return purifier.sanitize(highlight(String(text ?? ''), lang), PURIFY_OPTIONS);
}
