// Keys (admin sessions): create (the key shown once), edit limits, budget, expiry and scopes,
// revoke; spend against budget. Over /admin/keys and /admin/workspaces.

import { $, api, el, fillTable, fillWorkspaceSelect, formatInt, formatMoney, formatTime, hideNotice, showNotice, toUnits } from './lib.js';

const view = $('view-keys');
const notice = $('keys-notice');
const createForm = $('key-create');
const reveal = $('key-reveal');
const dialog = $('key-edit');
const editForm = $('key-edit-form');
const filter = $('keys-workspace');
const showRevoked = $('keys-show-revoked');
let keys = [];
let editing = null;
let confirming = null;

/** A datetime-local value (read as UTC) to ISO, or null when empty. */
const expiresIso = (v) => (v ? new Date(`${v}:00Z`).toISOString() : null);
const intOrNull = (v) => (String(v ?? '').trim() === '' ? null : Number(v));

/** The limit fields of a form as the API's body. */
function limitsOf(form) {
  const f = new FormData(form);
  const budget = String(f.get('budget_usd') ?? '').trim();
  return {
    scopes: f.getAll('scopes').map(String),
    rpm: intOrNull(f.get('rpm')),
    tpm: intOrNull(f.get('tpm')),
    budget_usd: budget === '' ? null : budget,
    budget_period: budget === '' ? null : String(f.get('budget_period')),
    expires_at: expiresIso(String(f.get('expires_at') ?? '')),
  };
}

function stateOf(k) {
  if (k.revoked_at) return 'revoked';
  if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return 'expired';
  return 'active';
}

function spendCell(k) {
  const spent = k.spend_usd;
  if (!k.budget_usd) {
    return el(
      'td',
      { 'data-testid': 'key-spend' },
      spent === undefined || spent === null ? '—' : `${formatMoney(spent)} this ${k.spend_period ?? 'month'} · no budget`,
    );
  }
  const budget = toUnits(k.budget_usd);
  const used = spent === null || spent === undefined ? null : toUnits(spent);
  const share = used === null || budget === 0n ? null : Number((used * 1000n) / budget) / 10;
  return el(
    'td',
    { 'data-testid': 'key-spend', 'data-budget': k.budget_usd, 'data-spend': spent ?? '' },
    el('div', {}, `${used === null ? '?' : formatMoney(spent)} of ${formatMoney(k.budget_usd)} / ${k.budget_period ?? 'month'}`),
    el('meter', {
      min: 0,
      max: 100,
      low: 80,
      high: 95,
      optimum: 0,
      value: Math.min(100, share ?? 0),
      title: share === null ? 'spend unknown' : `${share}% used`,
    }),
  );
}

function actions(k) {
  if (k.revoked_at) return el('td', {});
  const edit = el('button', { type: 'button', class: 'secondary small', 'data-testid': 'key-edit-button' }, 'Edit');
  edit.addEventListener('click', () => openEdit(k));
  if (confirming === k.id) {
    const yes = el('button', { type: 'button', class: 'danger small', 'data-testid': 'key-revoke-confirm' }, 'Revoke now');
    const no = el('button', { type: 'button', class: 'secondary small' }, 'Cancel');
    yes.addEventListener('click', () => revoke(k));
    no.addEventListener('click', () => ((confirming = null), render()));
    return el('td', { class: 'actions' }, yes, no);
  }
  const revokeButton = el('button', { type: 'button', class: 'danger small', 'data-testid': 'key-revoke' }, 'Revoke');
  revokeButton.addEventListener('click', () => ((confirming = k.id), render()));
  return el('td', { class: 'actions' }, edit, revokeButton);
}

function render() {
  const shown = keys.filter((k) => (!filter.value || k.workspace_id === filter.value) && (showRevoked.checked || !k.revoked_at));
  fillTable(
    $('table-keys'),
    shown.map((k) => [
      el('td', { 'data-testid': 'key-row-name' }, k.name),
      el('td', {}, k.workspace),
      el('td', {}, el('code', {}, k.prefix)),
      el('td', {}, k.scopes.join(', ')),
      el('td', { class: 'num', 'data-testid': 'key-row-rpm' }, k.rpm === null ? '—' : formatInt(k.rpm)),
      el('td', { class: 'num', 'data-testid': 'key-row-tpm' }, k.tpm === null ? '—' : formatInt(k.tpm)),
      spendCell(k),
      el('td', {}, k.expires_at ? formatTime(k.expires_at) : 'never'),
      el('td', { 'data-testid': 'key-state' }, stateOf(k)),
      actions(k),
    ]),
    'No keys yet.',
  );
  for (const [i, tr] of [...$('table-keys').tBodies[0].rows].entries()) if (shown[i]) tr.dataset.key = shown[i].id;
}

async function load() {
  view.dataset.state = 'loading';
  try {
    keys = (await api('/admin/keys')).data;
    render();
    view.dataset.state = 'ready';
  } catch (err) {
    view.dataset.state = 'error';
    showNotice(notice, err, 'error');
  }
}

function openEdit(k) {
  editing = k;
  $('key-edit-name').textContent = k.name;
  $('key-edit-error').hidden = true;
  const set = (name, value) => (editForm.elements.namedItem(name).value = value ?? '');
  set('rpm', k.rpm);
  set('tpm', k.tpm);
  set('budget_usd', k.budget_usd);
  set('budget_period', k.budget_period ?? 'month');
  set('expires_at', k.expires_at ? k.expires_at.slice(0, 16) : '');
  for (const box of editForm.querySelectorAll('input[name="scopes"]')) box.checked = k.scopes.includes(box.value);
  dialog.showModal();
}

editForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const body = limitsOf(editForm);
  const error = $('key-edit-error');
  if (body.scopes.length === 0) {
    error.textContent = 'Pick at least one scope.';
    error.hidden = false;
    return;
  }
  try {
    await api(`/admin/keys/${encodeURIComponent(editing.id)}`, { method: 'PATCH', body });
    dialog.close();
    showNotice(notice, `Saved key “${editing.name}”.`, 'ok');
    await load();
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
});
$('key-edit-cancel').addEventListener('click', () => dialog.close());

async function revoke(k) {
  confirming = null;
  try {
    await api(`/admin/keys/${encodeURIComponent(k.id)}/revoke`, { method: 'POST' });
    showNotice(notice, `Revoked key “${k.name}”: it is refused from now on.`, 'ok');
    await load();
  } catch (err) {
    showNotice(notice, err, 'error');
  }
}

function clearReveal() {
  $('key-reveal-value').textContent = '';
  reveal.hidden = true;
}

createForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const f = new FormData(createForm);
  const limits = limitsOf(createForm);
  if (limits.scopes.length === 0) return showNotice(notice, 'Pick at least one scope.', 'error');
  const body = { workspace: String(f.get('workspace')), name: String(f.get('name')).trim() };
  // Only what was filled in: the API's defaults stand for the rest.
  for (const [k, v] of Object.entries(limits)) if (v !== null) body[k] = v;
  try {
    const created = await api('/admin/keys', { method: 'POST', body });
    $('key-reveal-value').textContent = created.key;
    reveal.hidden = false;
    hideNotice(notice);
    createForm.reset();
    createForm.elements.namedItem('workspace').value = body.workspace;
    createForm.querySelector('input[name="scopes"][value="proxy"]').checked = true;
    await load();
  } catch (err) {
    showNotice(notice, err, 'error');
  }
});

$('key-reveal-done').addEventListener('click', clearReveal);
$('key-reveal-copy').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText($('key-reveal-value').textContent);
    $('key-reveal-copy').textContent = 'Copied';
  } catch {
    // Clipboard needs a secure context: select the text for a manual copy instead.
    getSelection()?.selectAllChildren($('key-reveal-value'));
  }
});
filter.addEventListener('change', render);
showRevoked.addEventListener('change', render);

export async function show() {
  try {
    await fillWorkspaceSelect(createForm.elements.namedItem('workspace'));
    await fillWorkspaceSelect(filter, { all: 'all' });
  } catch (err) {
    showNotice(notice, err, 'error');
  }
  await load();
}

/** Leaving the view forgets a key still shown: it is shown once. */
export function hide() {
  clearReveal();
  $('key-reveal-copy').textContent = 'Copy';
}
