// Usage dashboard client. Reads /admin/usage with the session cookie (same origin) and draws the
// totals, an SVG chart and the tables. Everything reaches the DOM through textContent or
// attributes, never innerHTML: model and key names are chosen by API clients.
// Money stays a decimal string from the API: sums use BigInt, never floats (floats only size bars).

const SVG = 'http://www.w3.org/2000/svg';
const DAY_MS = 86_400_000;
const MAX_SERIES = 10;
const $ = (id) => document.getElementById(id);
const main = $('dashboard');
const fromInput = $('from');
const toInput = $('to');
const notice = $('notice');
let generation = 0;

const addDays = (day, n) => new Date(Date.parse(day) + n * DAY_MS).toISOString().slice(0, 10);
const formatInt = (n) => Number(n).toLocaleString('en-US');

/** `to` in the form is the last day shown; the API's `to` is exclusive. */
function usageUrl(from, to, groupBy, format) {
  const q = new URLSearchParams({ from, to: addDays(to, 1), group_by: groupBy, format });
  return `/admin/usage?${q}`;
}

function scaled(s, scale) {
  const m = /^(-?)(\d*)(?:\.(\d*))?$/.exec(String(s).trim()) ?? ['', '', '0', ''];
  const v = BigInt((m[2] || '0') + (m[3] ?? '').padEnd(scale, '0').slice(0, scale));
  return m[1] ? -v : v;
}

/** Exact sum of decimal strings. */
function addMoney(...values) {
  const scale = Math.max(0, ...values.map((v) => (String(v).split('.')[1] ?? '').length));
  const total = values.reduce((sum, v) => sum + scaled(v, scale), 0n);
  const digits = (total < 0n ? -total : total).toString().padStart(scale + 1, '0');
  const int = digits.slice(0, digits.length - scale);
  return `${total < 0n ? '-' : ''}${int}${scale ? `.${digits.slice(-scale)}` : ''}`;
}

/** A decimal string as shown: thousands separators, at least 2 decimals, no trailing zeros past that. */
function formatMoney(s) {
  const [int, frac = ''] = addMoney(s ?? '0').split('.');
  const shownFrac = frac.replace(/0+$/, '').padEnd(2, '0');
  return `$${int.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${shownFrac}`;
}

function el(tag, attrs = {}, text) {
  const node = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function showNotice(message, kind = '', link) {
  notice.replaceChildren(message);
  if (link) notice.append(' ', el('a', { href: link.href }, link.text));
  notice.className = `notice ${kind}`;
  notice.dataset.kind = kind || 'info';
  notice.hidden = false;
}

class SessionEnded extends Error {}

async function getUsage(url) {
  const res = await fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (res.status === 401) throw new SessionEnded();
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.error?.message ?? `The report failed (HTTP ${res.status}).`);
  return body;
}

function renderTotals(t) {
  const cost = $('totals-cost');
  cost.textContent = formatMoney(t.cost_usd);
  cost.dataset.value = t.cost_usd;
  for (const [id, field] of [
    ['totals-requests', 'requests'],
    ['totals-errors', 'errors'],
    ['totals-prompt', 'prompt_tokens'],
    ['totals-completion', 'completion_tokens'],
    ['totals-unpriced', 'unpriced_requests'],
  ]) {
    $(id).textContent = formatInt(t[field] ?? 0);
    $(id).dataset.value = String(t[field] ?? 0);
  }
}

/** Models by cost, biggest first; past MAX_SERIES - 1 the rest share one "Other models" series. */
function seriesOf(byModel) {
  const models = [...byModel].sort((a, b) => Number(b.cost_usd) - Number(a.cost_usd)).map((r) => r.model ?? '(unknown)');
  const index = new Map();
  const names = [];
  models.forEach((m, i) => {
    const s = models.length > MAX_SERIES && i >= MAX_SERIES - 1 ? MAX_SERIES - 1 : i;
    index.set(m, s);
    names[s] = s === MAX_SERIES - 1 && models.length > MAX_SERIES ? 'Other models' : m;
  });
  return { index, names };
}

function niceStep(max, ticks) {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
}

function renderChart(from, to, byDay, series) {
  const svg = $('chart');
  const [width, height, left, right, top, bottom] = [960, 320, 78, 12, 12, 30];
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const days = [];
  for (let d = from; d <= to && days.length < 1000; d = addDays(d, 1)) days.push(d);
  const stacks = new Map(days.map((d) => [d, new Map()]));
  for (const row of byDay) {
    const stack = stacks.get(row.day);
    const s = series.index.get(row.model ?? '(unknown)');
    if (!stack || s === undefined) continue;
    stack.set(s, addMoney(stack.get(s) ?? '0', row.cost_usd));
  }
  const dayTotal = (stack) => Number(addMoney('0', ...stack.values()));
  const max = Math.max(0, ...[...stacks.values()].map(dayTotal));
  const step = max > 0 ? niceStep(max, 4) : 1;
  const yMax = max > 0 ? Math.ceil(max / step) * step : 4;
  const decimals = Math.max(2, 1 - Math.floor(Math.log10(step)));
  const y = (v) => top + plotH - (v / yMax) * plotH;
  const nodes = [];
  for (let v = 0; v <= yMax + step / 2; v += step) {
    nodes.push(el('svg:line', { class: 'axis', x1: left, x2: width - right, y1: y(v), y2: y(v) }));
    nodes.push(el('svg:text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, `$${v.toFixed(decimals)}`));
  }
  const band = plotW / days.length;
  const barW = Math.max(1, band * 0.7);
  const labelEvery = Math.ceil(days.length / 10);
  days.forEach((day, i) => {
    const x = left + i * band + (band - barW) / 2;
    if (i % labelEvery === 0) nodes.push(el('svg:text', { x: x + barW / 2, y: height - 10, 'text-anchor': 'middle' }, day.slice(5)));
    let base = 0;
    for (const [s, cost] of [...stacks.get(day).entries()].sort((a, b) => a[0] - b[0])) {
      const value = Number(cost);
      if (!(value > 0)) continue;
      const h = Math.max(1, (value / yMax) * plotH);
      const rect = el('svg:rect', {
        class: `bar series-${s}`,
        x,
        y: y(base) - h,
        width: barW,
        height: h,
        'data-model': series.names[s],
        'data-day': day,
        'data-cost': cost,
      });
      rect.append(el('svg:title', {}, `${day} · ${series.names[s]}: ${formatMoney(cost)}`));
      nodes.push(rect);
      base += (h / plotH) * yMax;
    }
  });
  if (max === 0) nodes.push(el('svg:text', { x: left + plotW / 2, y: top + plotH / 2, 'text-anchor': 'middle' }, 'No cost in this range'));
  svg.replaceChildren(...nodes);
  $('legend').replaceChildren(
    ...series.names.map((name, s) => {
      const swatch = el('svg:svg', { width: 12, height: 12, 'aria-hidden': 'true' });
      swatch.append(el('svg:rect', { class: `series-${s}`, width: 12, height: 12, rx: 2 }));
      const li = el('li', { 'data-model': name });
      li.append(swatch, name);
      return li;
    }),
  );
}

/** The figure columns every report table has (see numberCells and pages.ts). */
const FIGURES = 6;

function numberCells(r) {
  return [
    el('td', { class: 'num' }, formatInt(r.requests ?? 0)),
    el('td', { class: 'num' }, formatInt(r.errors ?? 0)),
    el('td', { class: 'num' }, formatInt(r.prompt_tokens ?? 0)),
    el('td', { class: 'num' }, formatInt(r.completion_tokens ?? 0)),
    el('td', { class: 'num', 'data-value': r.cost_usd ?? '0' }, formatMoney(r.cost_usd)),
    el('td', { class: 'num', 'data-unpriced': String(r.unpriced_requests ?? 0), title: `${formatInt(r.unpriced_tokens ?? 0)} tokens without a price` }, formatInt(r.unpriced_requests ?? 0)),
  ];
}

function renderTable(table, rows, totals, labelCells) {
  const width = labelCells({}).length + FIGURES;
  const body = rows.length
    ? [...rows]
        .sort((a, b) => Number(b.cost_usd) - Number(a.cost_usd))
        .map((r) => {
          const tr = el('tr');
          tr.append(...labelCells(r), ...numberCells(r));
          return tr;
        })
    : [
        (() => {
          const tr = el('tr');
          tr.append(el('td', { colspan: width, class: 'muted' }, 'No usage in this range.'));
          return tr;
        })(),
      ];
  table.tBodies[0].replaceChildren(...body);
  table.tFoot?.remove();
  const foot = table.createTFoot();
  const tr = foot.insertRow();
  tr.append(el('td', { colspan: width - FIGURES }, 'Total'), ...numberCells(totals));
}

async function load() {
  const from = fromInput.value;
  const to = toInput.value;
  if (!from || !to || from > to) return showNotice('Pick a start day on or before the end day.', 'error');
  const mine = ++generation;
  $('download').href = usageUrl(from, to, 'day,workspace,key,model', 'csv');
  $('download').setAttribute('download', `usage-${from}-to-${to}.csv`);
  history.replaceState(null, '', `?${new URLSearchParams({ from, to })}`);
  main.dataset.state = 'loading';
  try {
    const [byDay, byModel, byKey] = await Promise.all([
      getUsage(usageUrl(from, to, 'day,model', 'json')),
      getUsage(usageUrl(from, to, 'model', 'json')),
      getUsage(usageUrl(from, to, 'workspace,key', 'json')),
    ]);
    if (mine !== generation) return;
    renderTotals(byModel.totals);
    renderChart(from, to, byDay.data, seriesOf(byModel.data));
    renderTable($('table-by-model'), byModel.data, byModel.totals, (r) => [el('td', {}, r.model ?? '(unknown)')]);
    renderTable($('table-by-key'), byKey.data, byKey.totals, (r) => [
      el('td', {}, r.workspace ?? r.workspace_id ?? '—'),
      el('td', { title: r.key ?? '' }, r.key ? (r.key_name ?? r.key) : '(no key)'),
    ]);
    if (byModel.data.length === 0) showNotice(`No usage recorded from ${from} to ${to}.`, 'info');
    else notice.hidden = true;
    main.dataset.state = 'ready';
    main.dataset.range = `${from}..${to}`;
  } catch (err) {
    if (mine !== generation) return;
    main.dataset.state = 'error';
    if (err instanceof SessionEnded) showNotice('Your session has ended.', 'error', { href: '/dashboard', text: 'Sign in again' });
    else showNotice(err instanceof Error ? err.message : 'The report failed.', 'error');
  }
}

$('range').addEventListener('submit', (event) => {
  event.preventDefault();
  load();
});
load();
