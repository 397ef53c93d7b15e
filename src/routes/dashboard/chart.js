// The cost-per-day chart: stacked bars per model, drawn at the width of its box (so its text stays
// readable on a phone), with day labels counted back from the last day so that day is always labelled.

import { addDays, addMoney, el, formatMoney, toUnits } from './lib.js';

const MAX_SERIES = 10;

/**
 * Models with cost in the range, biggest first; past MAX_SERIES - 1 the rest share "Other models".
 * A model with no cost (only failures, or unpriced) draws no bar, so it gets no legend entry.
 */
export function seriesOf(byModel) {
  const priced = byModel
    .filter((r) => toUnits(r.cost_usd) > 0n)
    .sort((a, b) => {
      const d = toUnits(b.cost_usd) - toUnits(a.cost_usd);
      return d > 0n ? 1 : d < 0n ? -1 : String(a.model).localeCompare(String(b.model));
    });
  const index = new Map();
  const names = [];
  const totals = [];
  const overflow = priced.length > MAX_SERIES;
  priced.forEach((r, i) => {
    const s = overflow && i >= MAX_SERIES - 1 ? MAX_SERIES - 1 : i;
    const model = r.model ?? '(unknown)';
    index.set(model, s);
    names[s] = overflow && s === MAX_SERIES - 1 ? 'Other models' : model;
    totals[s] = addMoney(totals[s] ?? '0', r.cost_usd);
  });
  return { index, names, totals };
}

function niceStep(max, ticks) {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
}

function axisLabel(v, decimals) {
  return `$${v.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals })}`;
}

/** Draws the chart into `svg` for the days from..to (inclusive) and fills the legend. */
export function renderChart({ svg, legend, width }, from, to, byDay, series) {
  const narrow = width < 560;
  const height = narrow ? 240 : 320;
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
  const step = max > 0 ? niceStep(max, narrow ? 3 : 4) : 1;
  const yMax = max > 0 ? Math.ceil(max / step) * step : 4;
  const decimals = Math.max(2, 1 - Math.floor(Math.log10(step)));
  const ticks = [];
  for (let v = 0; v <= yMax + step / 2; v += step) ticks.push(v);
  const left = 10 + 6.6 * Math.max(...ticks.map((v) => axisLabel(v, decimals).length));
  const [right, top, bottom] = [8, 12, 28];
  const plotW = Math.max(50, width - left - right);
  const plotH = height - top - bottom;
  const y = (v) => top + plotH - (v / yMax) * plotH;
  const nodes = [];
  for (const v of ticks) {
    nodes.push(el('svg:line', { class: 'axis', x1: left, x2: width - right, y1: y(v), y2: y(v) }));
    nodes.push(el('svg:text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, axisLabel(v, decimals)));
  }
  const band = plotW / days.length;
  const barW = Math.max(1, band * 0.7);
  // A label ("MM-DD") takes about 40 px; count back from the last day so it always has one.
  const labelEvery = Math.max(1, Math.ceil(days.length / Math.max(1, Math.floor(plotW / 44))));
  days.forEach((day, i) => {
    const x = left + i * band + (band - barW) / 2;
    if ((days.length - 1 - i) % labelEvery === 0) {
      // Labels near an edge are anchored inside the plot, never cut off.
      const cx = x + barW / 2;
      const anchor = cx + 18 > width ? 'end' : cx - 18 < left - 6 ? 'start' : 'middle';
      const lx = anchor === 'end' ? width - 2 : anchor === 'start' ? left - 6 : cx;
      nodes.push(el('svg:text', { class: 'day', x: lx, y: height - 9, 'text-anchor': anchor, 'data-day': day }, day.slice(5)));
    }
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
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.replaceChildren(...nodes);
  legend.replaceChildren(
    ...series.names.map((name, s) => {
      const swatch = el(
        'svg:svg',
        { width: 12, height: 12, 'aria-hidden': 'true' },
        el('svg:rect', { class: `series-${s}`, width: 12, height: 12, rx: 2 }),
      );
      return el(
        'li',
        { 'data-model': name, 'data-cost': series.totals[s] },
        swatch,
        el('span', { class: 'name' }, name),
        ' ',
        el('span', { class: 'muted' }, formatMoney(series.totals[s])),
      );
    }),
  );
}
