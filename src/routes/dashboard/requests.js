// The request log: /admin/usage/requests with filters (days, key, model, status), newest first,
// a page at a time; a request on a thread links to that thread (admin sessions).

import { $, addDays, api, el, fillTable, formatInt, formatMs, formatTime, hideNotice, moneyCell, showNotice } from './lib.js';

const PAGE = 50;
const view = $('view-requests');
const form = $('requests-filter');
const notice = $('requests-notice');
const table = $('table-requests');
const more = $('requests-more');
const admin = $('dashboard').dataset.role === 'admin';
let rows = [];
let cursor = null;
let generation = 0;
/** Key ids to names, from the by-key report (what a reports key may read too). */
let keyNames = new Map();

function filters() {
  const f = new FormData(form);
  const q = new URLSearchParams({ from: String(f.get('from')), to: addDays(String(f.get('to')), 1), limit: String(PAGE) });
  for (const name of ['key', 'model', 'status']) {
    const v = String(f.get(name) ?? '').trim();
    if (v) q.set(name, v);
  }
  return q;
}

function threadCell(r) {
  if (!r.thread_id) return el('td', { class: 'muted' }, '—');
  if (!admin) return el('td', {}, el('code', {}, r.thread_id));
  const href = `#threads/${encodeURIComponent(r.workspace_id)}/${encodeURIComponent(r.thread_id)}`;
  return el('td', {}, el('a', { href, 'data-testid': 'thread-link', 'data-thread': r.thread_id }, r.thread_id));
}

function render() {
  fillTable(
    table,
    rows.map((r) => [
      el('td', { title: r.request_id }, formatTime(r.created_at)),
      el(
        'td',
        { 'data-status': r.status, class: r.status === 'ok' ? '' : 'bad' },
        `${r.status} · ${r.http_status}`,
        r.error_code ? el('div', { class: 'muted' }, r.error_code) : null,
      ),
      el('td', {}, r.model),
      el(
        'td',
        { title: `${r.key_id}${r.workspace_name ? ` · ${r.workspace_name}` : ''}` },
        r.key_name ?? keyNames.get(r.key_id) ?? r.key_id,
      ),
      el('td', { class: 'num' }, formatInt(r.prompt_tokens)),
      el('td', { class: 'num' }, formatInt(r.completion_tokens)),
      moneyCell('td', r.cost_usd),
      el('td', { class: 'num' }, formatMs(r.latency_ms)),
      threadCell(r),
    ]),
    'No requests match these filters.',
  );
  for (const [i, tr] of [...table.tBodies[0].rows].entries()) if (rows[i]) tr.dataset.request = rows[i].request_id;
  more.hidden = !cursor;
}

async function load(append = false) {
  const mine = ++generation;
  const q = filters();
  if (append && cursor) q.set('cursor', cursor);
  view.dataset.state = 'loading';
  try {
    const page = await api(`/admin/usage/requests?${q}`);
    if (mine !== generation) return;
    rows = append ? [...rows, ...page.data] : page.data;
    cursor = page.next_cursor;
    render();
    hideNotice(notice);
    view.dataset.state = 'ready';
  } catch (err) {
    if (mine !== generation) return;
    view.dataset.state = 'error';
    showNotice(notice, err, 'error');
  }
}

/** Key and model suggestions for the filters, from the usage report of the same days. */
async function loadSuggestions() {
  const f = new FormData(form);
  const q = new URLSearchParams({ from: String(f.get('from')), to: addDays(String(f.get('to')), 1), group_by: 'key,model' });
  try {
    const report = await api(`/admin/usage?${q}`);
    keyNames = new Map(report.data.filter((r) => r.key).map((r) => [r.key, r.key_name ?? r.key]));
    const models = [...new Set(report.data.map((r) => r.model).filter(Boolean))].sort();
    $('requests-keys').replaceChildren(...[...keyNames].map(([id, name]) => el('option', { value: name }, id)));
    $('requests-models').replaceChildren(...models.map((m) => el('option', { value: m })));
  } catch {
    // suggestions only
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  load();
});
more.addEventListener('click', () => load(true));

/** Each visit reads the log again with the filters as they are. */
export async function show() {
  await loadSuggestions();
  await load();
}
