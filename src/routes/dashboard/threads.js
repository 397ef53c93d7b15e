// Threads (admin sessions): a workspace's threads, one thread's items, deleting it, and the dry
// run of what the next request would be forwarded with. Over /admin/workspaces/{ws}/threads…,
// the thread API of /v1/threads for operators. `#threads/{workspace}/{thread}` opens one thread.

import { $, api, contentText, el, fillTable, fillWorkspaceSelect, formatInt, formatTime, hideNotice, showNotice } from './lib.js';

const view = $('view-threads');
const notice = $('threads-notice');
const select = $('threads-workspace');
const list = $('threads-list');
const detail = $('thread-detail');
const dryrun = $('dryrun');
let threads = [];
let threadsMore = false;
let items = [];
let itemsMore = false;
let current = null; // { ws, id }

const base = (ws) => `/admin/workspaces/${encodeURIComponent(ws)}/threads`;
const threadUrl = (ws, id) => `${base(ws)}/${encodeURIComponent(id)}`;

function renderThreads() {
  fillTable(
    $('table-threads'),
    threads.map((t) => [
      el(
        'td',
        {},
        el(
          'a',
          { href: `#threads/${encodeURIComponent(select.value)}/${encodeURIComponent(t.id)}`, 'data-testid': 'thread-row-link' },
          t.id,
        ),
      ),
      el('td', {}, t.title ?? '—'),
      el('td', {}, formatTime(t.updated_at)),
      el('td', {}, formatTime(t.created_at)),
    ]),
    'No threads in this workspace.',
  );
  $('threads-more').hidden = !threadsMore;
}

async function loadThreads(append = false) {
  const q = new URLSearchParams({ limit: '50' });
  if (append && threads.length) q.set('after', threads.at(-1).id);
  const page = await api(`${base(select.value)}?${q}`);
  threads = append ? [...threads, ...page.data] : page.data;
  threadsMore = page.has_more;
  renderThreads();
}

function renderItems() {
  fillTable(
    $('table-items'),
    items.map((i) => [
      el('td', { class: 'num' }, i.seq),
      el('td', {}, i.kind, i.pinned ? el('span', { class: 'badge' }, 'pinned') : null),
      el('td', {}, i.role ?? '—'),
      el('td', {}, i.status),
      el('td', { class: 'num' }, formatInt(i.tokens)),
      el('td', { class: 'pre content' }, contentText(i.content) || (i.tool_calls ? JSON.stringify(i.tool_calls) : '')),
    ]),
    'This thread has no items.',
  );
  $('items-more').hidden = !itemsMore;
}

async function loadItems(append = false) {
  const q = new URLSearchParams({ limit: '100' });
  if (append && items.length) q.set('after', String(items.at(-1).seq));
  const page = await api(`${threadUrl(current.ws, current.id)}/items?${q}`);
  items = append ? [...items, ...page.data] : page.data;
  itemsMore = page.has_more;
  renderItems();
}

function confirmDelete(on) {
  $('thread-delete').hidden = on;
  $('thread-delete-confirm').hidden = !on;
  $('thread-delete-cancel').hidden = !on;
}

async function openThread(ws, id) {
  current = { ws, id };
  list.hidden = true;
  detail.hidden = false;
  confirmDelete(false);
  $('dryrun-result').hidden = true;
  const t = await api(threadUrl(ws, id));
  $('thread-id').textContent = t.id;
  $('thread-title').textContent = t.title ?? '—';
  $('thread-updated').textContent = formatTime(t.updated_at);
  $('thread-summary').textContent = t.summary ?? '—';
  await loadItems();
  // The model the thread last used is the likeliest next one.
  const model = dryrun.elements.namedItem('model');
  if (!model.value) model.value = [...items].reverse().find((i) => i.model)?.model ?? 'openai/gpt-4o-mini';
}

async function runDryRun(event) {
  event.preventDefault();
  const f = new FormData(dryrun);
  const cap = String(f.get('max_tokens') ?? '').trim();
  try {
    const plan = await api(`${threadUrl(current.ws, current.id)}/context`, {
      method: 'POST',
      body: { model: String(f.get('model')).trim(), messages: [{ role: 'user', content: String(f.get('message')) }] },
      headers: cap ? { 'x-memory-max-tokens': cap } : {},
    });
    const t = plan.tokens;
    const r = plan.retrieval ?? {};
    const search = [r.lexical ? 'lexical' : null, r.vector ? `vector (${r.vector})` : null].filter(Boolean).join(' + ') || 'off';
    $('dryrun-summary').textContent =
      `${plan.messages.length} messages, about ${formatInt(t.prompt)} prompt tokens; memory ${formatInt(t.memory)} of a ${formatInt(t.budget)}-token budget ` +
      `(pinned ${formatInt(t.split?.pinned)}, summary ${formatInt(t.split?.summary)}, retrieved ${formatInt(t.split?.retrieved)}, recent ${formatInt(t.split?.recent)}); ` +
      `${plan.injected_items} items injected, ${plan.retrieved_items} retrieved (retrieval: ${search}).`;
    $('dryrun-messages').replaceChildren(
      ...plan.messages.map((m, i) =>
        el(
          'li',
          { 'data-role': m.role, class: i >= plan.messages.length - 1 ? 'mine' : '' },
          el('span', { class: 'role' }, m.role, i >= plan.messages.length - 1 ? ' · this request' : ''),
          el('div', { class: 'pre content' }, contentText(m.content) || (m.tool_calls ? JSON.stringify(m.tool_calls) : '')),
        ),
      ),
    );
    $('dryrun-result').hidden = false;
    hideNotice(notice);
  } catch (err) {
    showNotice(notice, err, 'error');
  }
}

async function deleteThread() {
  const { ws, id } = current;
  try {
    await api(threadUrl(ws, id), { method: 'DELETE' });
    location.hash = `#threads/${encodeURIComponent(ws)}`;
    showNotice(notice, `Deleted thread “${id}” and its items.`, 'ok');
  } catch (err) {
    showNotice(notice, err, 'error');
  }
}

select.addEventListener('change', () => {
  location.hash = `#threads/${encodeURIComponent(select.value)}`;
});
$('threads-more').addEventListener('click', () => loadThreads(true).catch((err) => showNotice(notice, err, 'error')));
$('items-more').addEventListener('click', () => loadItems(true).catch((err) => showNotice(notice, err, 'error')));
$('thread-delete').addEventListener('click', () => confirmDelete(true));
$('thread-delete-cancel').addEventListener('click', () => confirmDelete(false));
$('thread-delete-confirm').addEventListener('click', deleteThread);
dryrun.addEventListener('submit', runDryRun);

/** `args`: [workspace id or name, thread id], both optional. */
export async function show(args = []) {
  const [ws, id] = args;
  view.dataset.state = 'loading';
  try {
    const workspaces = await fillWorkspaceSelect(select, { selected: ws });
    if (!select.value && workspaces.length) select.value = workspaces[0].id;
    if (ws && id) await openThread(ws, id);
    else {
      current = null;
      detail.hidden = true;
      list.hidden = false;
      if (select.value) await loadThreads();
      else fillTable($('table-threads'), [], 'Create a workspace first.');
    }
    view.dataset.state = 'ready';
  } catch (err) {
    view.dataset.state = 'error';
    showNotice(notice, err, 'error');
  }
}
