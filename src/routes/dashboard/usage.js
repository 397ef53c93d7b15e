// The usage view: totals, cost per day by model, tables by model and by key, latency, errors and
// unpriced usage for a range of UTC days, from /admin/usage (and its latency and errors answers).

import { renderChart, seriesOf } from './chart.js';
import { $, addDays, api, el, fillTable, formatInt, formatMoney, formatMs, formatTime, hideNotice, moneyCell, showNotice } from './lib.js';

const main = $('dashboard');
const view = $('view-usage');
/** The usage view's state, also on <main> (where the first dashboard tests look for it). */
const setState = (state) => {
  main.dataset.state = state;
  view.dataset.state = state;
};
const fromInput = $('from');
const toInput = $('to');
const notice = $('notice');
let generation = 0;
/** What the chart was last drawn from, to redraw it when its box changes width. */
let drawn = null;

/** `to` in the form is the last day shown; the API's `to` is exclusive. */
function query(from, to, extra = {}) {
  return new URLSearchParams({ from, to: addDays(to, 1), ...extra });
}
const usageUrl = (from, to, groupBy, format = 'json') => `/admin/usage?${query(from, to, { group_by: groupBy, format })}`;

function renderTotals(t) {
  const cost = $('totals-cost');
  cost.textContent = formatMoney(t.cost_usd);
  cost.dataset.value = t.cost_usd;
  cost.title = `$${t.cost_usd}`;
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

const num = (v, attrs = {}) => el('td', { class: 'num', ...attrs }, formatInt(v));

function numberCells(r) {
  return [
    num(r.requests),
    num(r.errors),
    num(r.prompt_tokens),
    num(r.completion_tokens),
    moneyCell('td', r.cost_usd),
    num(r.unpriced_requests, {
      'data-unpriced': String(r.unpriced_requests ?? 0),
      title: `${formatInt(r.unpriced_tokens ?? 0)} tokens without a price`,
    }),
  ];
}

function renderReport(table, rows, totals, labelCells) {
  const sorted = [...rows].sort((a, b) => Number(b.cost_usd) - Number(a.cost_usd) || b.requests - a.requests);
  fillTable(
    table,
    sorted.map((r) => [...labelCells(r), ...numberCells(r)]),
    'No usage in this range.',
  );
  table.tFoot?.remove();
  const width = table.tHead.rows[0].cells.length;
  table.createTFoot().append(el('tr', {}, el('td', { colspan: width - 6 }, 'Total'), ...numberCells(totals)));
}

function renderLatency(rows) {
  fillTable(
    $('table-latency'),
    rows.map((r) => [
      el('td', {}, r.model),
      num(r.requests),
      num(r.ok_requests),
      el('td', { class: 'num', 'data-ms': r.p50_ms ?? '' }, formatMs(r.p50_ms)),
      el('td', { class: 'num', 'data-ms': r.p95_ms ?? '' }, formatMs(r.p95_ms)),
      el('td', { class: 'num' }, formatMs(r.ttfb_p50_ms)),
      el('td', { class: 'num' }, formatMs(r.ttfb_p95_ms)),
    ]),
    'No requests in this range.',
  );
}

function renderErrors(rows) {
  fillTable(
    $('table-errors'),
    rows.map((r) => [
      el('td', {}, r.status),
      el('td', { class: 'num' }, r.http_status),
      el('td', {}, r.error_code ?? '—'),
      num(r.requests),
      num(r.models),
      el('td', {}, formatTime(r.last_at)),
    ]),
    'No errors in this range.',
  );
}

function renderUnpriced(byModel) {
  const rows = byModel.filter((r) => r.unpriced_requests > 0).sort((a, b) => b.unpriced_tokens - a.unpriced_tokens);
  fillTable(
    $('table-unpriced'),
    rows.map((r) => [el('td', {}, r.model ?? '(unknown)'), num(r.unpriced_requests), num(r.unpriced_tokens), num(r.requests)]),
    'Every request in this range had a price.',
  );
}

function drawChart() {
  if (!drawn) return;
  const box = $('chart-box');
  const width = Math.max(280, Math.floor(box.clientWidth - 16));
  drawn.width = width;
  renderChart({ svg: $('chart'), legend: $('legend'), width }, drawn.from, drawn.to, drawn.byDay, drawn.series);
}

new ResizeObserver(() => {
  const box = $('chart-box');
  if (drawn && !$('view-usage').hidden && Math.abs(Math.floor(box.clientWidth - 16) - drawn.width) > 4) drawChart();
}).observe($('chart-box'));

async function load() {
  const from = fromInput.value;
  const to = toInput.value;
  if (!from || !to || from > to) return showNotice(notice, 'Pick a start day on or before the end day.', 'error');
  const mine = ++generation;
  // The file is named after the days shown (the server names it the same way).
  $('download').href = usageUrl(from, to, 'day,workspace,key,model', 'csv');
  $('download').setAttribute('download', `usage_${from}_${to}.csv`);
  history.replaceState(null, '', `?${new URLSearchParams({ from, to })}${location.hash}`);
  setState('loading');
  try {
    const [byDay, byModel, byKey, latency, errors] = await Promise.all([
      api(usageUrl(from, to, 'day,model')),
      api(usageUrl(from, to, 'model')),
      api(usageUrl(from, to, 'workspace,key')),
      api(`/admin/usage/latency?${query(from, to)}`),
      api(`/admin/usage/errors?${query(from, to)}`),
    ]);
    if (mine !== generation) return;
    renderTotals(byModel.totals);
    drawn = { from, to, byDay: byDay.data, series: seriesOf(byModel.data), width: 0 };
    drawChart();
    renderReport($('table-by-model'), byModel.data, byModel.totals, (r) => [el('td', {}, r.model ?? '(unknown)')]);
    renderReport($('table-by-key'), byKey.data, byKey.totals, (r) => [
      el('td', {}, r.workspace ?? r.workspace_id ?? '—'),
      el('td', { title: r.key ?? '' }, r.key ? (r.key_name ?? r.key) : '(no key)'),
    ]);
    renderLatency(latency.data);
    renderErrors(errors.data);
    renderUnpriced(byModel.data);
    if (byModel.data.length === 0) showNotice(notice, `No usage recorded from ${from} to ${to}.`, 'info');
    else hideNotice(notice);
    setState('ready');
    main.dataset.range = `${from}..${to}`;
  } catch (err) {
    if (mine !== generation) return;
    setState('error');
    showNotice(notice, err, 'error');
  }
}

$('range').addEventListener('submit', (event) => {
  event.preventDefault();
  load();
});

/** Each visit reads the range again: the ledger keeps growing. */
export function show() {
  load();
}
