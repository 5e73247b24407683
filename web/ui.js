// Small DOM helpers shared by the pages.

/** h('button', { class: 'x', onclick }, 'text', child…): an element; null/false children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function progressBar(progress, label = 'Progress') {
  const total = progress.total || 0;
  const done = progress.succeeded + progress.failed;
  const pct = total === 0 ? 0 : Math.round((done / total) * 100);
  return h(
    'div',
    { class: 'progress', role: 'progressbar', 'aria-label': label, 'aria-valuemin': '0', 'aria-valuemax': String(total), 'aria-valuenow': String(done) },
    h('div', { class: 'bar ok', style: { width: `${total ? (progress.succeeded / total) * 100 : 0}%` } }),
    h('div', { class: 'bar failed', style: { width: `${total ? (progress.failed / total) * 100 : 0}%` } }),
    h('span', { class: 'progress-text' }, `${progress.succeeded} of ${total} done${progress.failed ? `, ${progress.failed} failed` : ''} (${pct}%)`),
  );
}

export function statusBadge(status) {
  return h('span', { class: `badge status-${status}` }, status);
}

/** A message in the page's live region (announced by screen readers), gone after a while. */
export function toast(message, kind = 'info') {
  let region = document.getElementById('toasts');
  if (!region) {
    region = h('div', { id: 'toasts', class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(region);
  }
  const item = h('div', { class: `toast ${kind}` }, message);
  region.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

/** An error as a readable block (message, and the fields the service named). */
export function errorBlock(err) {
  const details = Array.isArray(err.details) ? err.details : [];
  return h(
    'div',
    { class: 'error', role: 'alert' },
    h('p', {}, err.message || 'Something went wrong.'),
    details.length ? h('ul', {}, details.map((d) => h('li', {}, `${(d.path || []).join('.') || 'request'}: ${d.message}`))) : null,
  );
}

/** A modal dialog; resolves when closed. Escape and the Close button close it. */
export function openDialog(title, content) {
  const dialog = h(
    'dialog',
    { class: 'dialog', 'aria-label': title },
    h('div', { class: 'dialog-head' }, h('h2', {}, title), h('button', { type: 'button', class: 'ghost', onclick: () => dialog.close() }, 'Close')),
    content,
  );
  document.body.append(dialog);
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener('close', () => (dialog.remove(), resolve())));
}

export function formatDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

/** Runs an action from a button: disabled while it runs, errors shown as a toast. */
export async function busy(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (err) {
    toast(err.message || 'Something went wrong.', 'error');
  } finally {
    button.disabled = false;
  }
}

/** The CSS aspect-ratio of a project's "16:9". */
export function ratio(aspectRatio) {
  const [w, h] = String(aspectRatio || '1:1').split(':').map(Number);
  return w > 0 && h > 0 ? `${w} / ${h}` : '1 / 1';
}
