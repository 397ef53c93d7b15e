// Shared helpers of the console's client. Everything reaches the DOM through textContent or
// attributes, never innerHTML: names, models, thread ids and message text are chosen by API clients.
// Money stays a decimal string from the API: sums and rounding use BigInt, never floats (floats
// only size bars).

const SVG = 'http://www.w3.org/2000/svg';
export const DAY_MS = 86_400_000;
export const $ = (id) => document.getElementById(id);

export const addDays = (day, n) => new Date(Date.parse(day) + n * DAY_MS).toISOString().slice(0, 10);
export const formatInt = (n) => Number(n ?? 0).toLocaleString('en-US');

/** `el('td', {class: 'num'}, 'text')`; children may be nodes or text. `svg:` tags are SVG. */
export function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null && v !== false) node.setAttribute(k, String(v));
  for (const child of children) if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  return node;
}

// ---- money ------------------------------------------------------------------------------------

const SCALE = 10; // the ledger's numeric scale
const CENT = 10n ** BigInt(SCALE - 2);

/** A decimal string as integer units of 10^-10 (more digits rounded half up). */
export function toUnits(s) {
  const m = /^(-?)(\d*)(?:\.(\d*))?$/.exec(String(s ?? '0').trim()) ?? ['', '', '0', ''];
  const frac = m[3] ?? '';
  let v = BigInt((m[2] || '0') + frac.padEnd(SCALE, '0').slice(0, SCALE));
  if (frac.length > SCALE && frac[SCALE] >= '5') v += 1n;
  return m[1] ? -v : v;
}

/** Integer units back to the shortest exact decimal string. */
export function fromUnits(v) {
  const neg = v < 0n;
  const digits = (neg ? -v : v).toString().padStart(SCALE + 1, '0');
  const frac = digits.slice(-SCALE).replace(/0+$/, '');
  return `${neg ? '-' : ''}${digits.slice(0, -SCALE)}${frac ? `.${frac}` : ''}`;
}

/** Exact sum of decimal strings. */
export const addMoney = (...values) => fromUnits(values.reduce((sum, v) => sum + toUnits(v), 0n));

const thousands = (int) => int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/**
 * Money as shown: rounded half up to the cent ($10,110.1000177 → $10,110.10). An amount under half
 * a cent that is not zero keeps two significant digits ($0.000033) rather than passing for $0.00.
 * The exact value stays in the element's data-value and title (and in the CSV and the API).
 */
export function formatMoney(s) {
  const v = toUnits(s);
  const neg = v < 0n;
  let abs = neg ? -v : v;
  const sign = neg ? '-' : '';
  if (abs > 0n && abs * 2n < CENT) {
    const e = abs.toString().length;
    const unit = e > 2 ? 10n ** BigInt(e - 2) : 1n;
    abs = ((abs + unit / 2n) / unit) * unit;
    if (abs * 2n < CENT) return `${sign}$0.${abs.toString().padStart(SCALE, '0').replace(/0+$/, '')}`;
  }
  const cents = (abs + CENT / 2n) / CENT;
  const int = (cents / 100n).toString();
  return `${sign}$${thousands(int)}.${(cents % 100n).toString().padStart(2, '0')}`;
}

/** A cell (or span) showing rounded money with the exact amount in data-value and the tooltip. */
export function moneyCell(tag, value, attrs = {}) {
  const exact = fromUnits(toUnits(value ?? '0'));
  return el(tag, { class: 'num', 'data-value': value ?? '0', title: `$${exact}`, ...attrs }, formatMoney(value));
}

// ---- times ------------------------------------------------------------------------------------

/** An ISO timestamp as "YYYY-MM-DD HH:MM:SS" in UTC. */
export const formatTime = (iso) =>
  iso
    ? String(iso)
        .replace('T', ' ')
        .replace(/(\.\d+)?Z$/, '')
    : '—';

export function formatMs(ms) {
  if (ms === null || ms === undefined) return '—';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${formatInt(Math.round(ms))} ms`;
}

// ---- the API ------------------------------------------------------------------------------------

export class SessionEnded extends Error {}

const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';

/**
 * Calls a JSON API of the gateway with the session cookie (same origin). Changes carry the
 * session's CSRF token. A 401 means the session has ended; other failures throw the API's message.
 */
export async function api(path, { method = 'GET', body, headers: extra = {} } = {}) {
  const headers = { accept: 'application/json', ...extra };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) throw new SessionEnded();
  const json = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error(json?.error?.message ?? `The request failed (HTTP ${res.status}).`);
    err.status = res.status;
    throw err;
  }
  return json;
}

// ---- notices and tables -------------------------------------------------------------------------

/** Shows a message in a notice element (`kind`: info, error, ok); an ended session links to sign-in. */
export function showNotice(node, message, kind = 'info') {
  if (message instanceof SessionEnded) {
    node.replaceChildren('Your session has ended. ', el('a', { href: '/dashboard' }, 'Sign in again'));
    kind = 'error';
  } else node.replaceChildren(message instanceof Error ? message.message : String(message));
  node.className = `notice ${kind}`;
  node.dataset.kind = kind;
  node.hidden = false;
}

export const hideNotice = (node) => {
  node.hidden = true;
};

/**
 * Fills a table body with rows (arrays of cells), or one muted row saying `empty`. Each cell gets
 * its column's name in data-label: a `reflow` table shows it beside the value on a phone.
 */
export function fillTable(table, rows, empty) {
  const labels = [...table.tHead.rows[0].cells].map((th) => th.textContent.trim());
  const row = (cells) => {
    cells.forEach((td, i) => td.setAttribute('data-label', labels[i] ?? ''));
    return el('tr', {}, ...cells);
  };
  const body = rows.length ? rows.map(row) : [el('tr', {}, el('td', { colspan: labels.length, class: 'muted empty' }, empty))];
  table.tBodies[0].replaceChildren(...body);
}

/** Text of a message's content: strings as they are, parts by their text, other parts named. */
export function contentText(content) {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((p) => (typeof p === 'string' ? p : typeof p?.text === 'string' ? p.text : `[${p?.type ?? 'part'}]`)).join('\n');
  }
  return JSON.stringify(content);
}

/** A workspace `<select>` filled from /admin/workspaces (`all`: an empty first option with that label). */
export async function fillWorkspaceSelect(select, { all, selected } = {}) {
  const { data } = await api('/admin/workspaces');
  const keep = selected ?? select.value;
  select.replaceChildren(...(all ? [el('option', { value: '' }, all)] : []), ...data.map((w) => el('option', { value: w.id }, w.name)));
  if (keep && data.some((w) => w.id === keep || w.name === keep)) select.value = data.find((w) => w.id === keep || w.name === keep).id;
  return data;
}
