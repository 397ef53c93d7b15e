// Workspaces (admin sessions): the list with each one's active keys, and a form to create one.

import { $, api, el, fillTable, formatTime, showNotice } from './lib.js';

const view = $('view-workspaces');
const notice = $('workspaces-notice');
const form = $('workspace-create');

async function load() {
  view.dataset.state = 'loading';
  try {
    const [workspaces, keys] = await Promise.all([api('/admin/workspaces'), api('/admin/keys')]);
    const active = new Map();
    for (const k of keys.data) if (!k.revoked_at) active.set(k.workspace_id, (active.get(k.workspace_id) ?? 0) + 1);
    fillTable(
      $('table-workspaces'),
      workspaces.data.map((w) => [
        el('td', { 'data-testid': 'workspace-row-name' }, w.name),
        el('td', {}, el('code', {}, w.id)),
        el('td', {}, formatTime(w.created_at)),
        el('td', { class: 'num' }, active.get(w.id) ?? 0),
        el('td', {}, el('a', { href: `#threads/${encodeURIComponent(w.id)}` }, 'Threads')),
      ]),
      'No workspaces yet.',
    );
    view.dataset.state = 'ready';
  } catch (err) {
    view.dataset.state = 'error';
    showNotice(notice, err, 'error');
  }
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = String(new FormData(form).get('name')).trim();
  try {
    await api('/admin/workspaces', { method: 'POST', body: { name } });
    form.reset();
    showNotice(notice, `Created workspace “${name}”.`, 'ok');
    await load();
  } catch (err) {
    showNotice(notice, err, 'error');
  }
});

export const show = load;
