// Percentiles, the results table, and bench/RESULTS.md (one section per configuration).

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { RunResult } from './loadgen.js';
import { ROOT } from './procs.js';

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export interface Row {
  metric: string;
  direct: string;
  gateway: string;
  delta: string;
  target: string;
  pass: boolean | null;
  /** The bare reference proxy in the same run (bench/reference-proxy.ts), where measured. */
  reference?: string;
}

const ms = (v: number) => `${v.toFixed(2)} ms`;
/** A difference in ms with its sign: `+0.45 ms`, `-0.12 ms`. */
export const signedMs = (v: number) => `${v < 0 ? '' : '+'}${v.toFixed(2)} ms`;

/** Rows for one latency measurement: p50 and p99, direct vs gateway, with the added ms. */
export function latencyRows(label: string, d: number[], g: number[], targets: { p50?: number; p99?: number }, ref?: number[]): Row[] {
  return (['p50', 'p99'] as const).map((p) => {
    const dv = percentile(d, p === 'p50' ? 50 : 99);
    const gv = percentile(g, p === 'p50' ? 50 : 99);
    const added = gv - dv;
    const limit = targets[p];
    return {
      ...(ref ? { reference: signedMs(percentile(ref, p === 'p50' ? 50 : 99) - dv) } : {}),
      metric: `${label} ${p}`,
      direct: ms(dv),
      gateway: ms(gv),
      delta: signedMs(added),
      target: limit === undefined ? '' : `added ≤ ${limit} ms`,
      pass: limit === undefined ? null : added <= limit,
    };
  });
}

const rps = (r: RunResult) => (r.okInWindow * 1000) / r.elapsedMs;

/** `minRps` undefined: no target (the row is a figure, not a check). */
export function throughputRow(label: string, d: RunResult, g: RunResult, minRps: number | undefined, ref?: RunResult): Row {
  const dr = rps(d);
  const gr = rps(g);
  return {
    ...(ref ? { reference: `${rps(ref).toFixed(0)} req/s` } : {}),
    metric: `${label} max throughput`,
    direct: `${dr.toFixed(0)} req/s`,
    gateway: `${gr.toFixed(0)} req/s`,
    delta: `×${(gr / dr).toFixed(2)}`,
    target: minRps === undefined ? '' : `gateway ≥ ${minRps} req/s`,
    pass: minRps === undefined ? null : gr >= minRps,
  };
}

/** One line per phase and target: counts of 2xx, non-2xx, errors, incomplete bodies. */
export function describeCounts(name: string, r: RunResult): { line: string; clean: boolean } {
  const non2xx = [...r.non2xx].map(([s, n]) => `${s}×${n}`).join(', ');
  const errors = [...r.errors].map(([e, n]) => `${e}×${n}`).join(', ');
  const clean = r.non2xx.size === 0 && r.errors.size === 0 && r.incomplete === 0;
  const line = `${name}: ${r.ok} ok, non-2xx ${non2xx || 0}, errors ${errors || 0}, incomplete ${r.incomplete}`;
  return { line, clean };
}

export function markdownTable(rows: Row[]): string {
  const withRef = rows.some((r) => r.reference !== undefined);
  const lines = withRef
    ? [
        '| Metric | Direct | Gateway | Added / ratio | Target | Result | Bare proxy, same run |',
        '| --- | ---: | ---: | ---: | --- | --- | ---: |',
      ]
    : ['| Metric | Direct | Gateway | Added / ratio | Target | Result |', '| --- | ---: | ---: | ---: | --- | --- |'];
  for (const r of rows) {
    const result = r.pass === null ? '' : r.pass ? 'PASS' : '**FAIL**';
    lines.push(
      `| ${r.metric} | ${r.direct} | ${r.gateway} | ${r.delta} | ${r.target} | ${result} |${withRef ? ` ${r.reference ?? ''} |` : ''}`,
    );
  }
  return lines.join('\n');
}

export function machineInfo(): string {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? model;
  } catch {
    // not Linux
  }
  let ramGb = totalmem() / 2 ** 30;
  try {
    const kb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
    if (kb) ramGb = kb / 2 ** 20;
  } catch {
    // not Linux
  }
  return `${model}, ${cpus().length} cores, ${ramGb.toFixed(1)} GiB RAM, Node ${process.version}`;
}

/** Replaces (or appends) the `## <heading>` section of RESULTS.md, keeping every other section. */
export function writeSection(file: string, heading: string, body: string): void {
  const title = '# Benchmark results\n\nWritten by `npm run bench` (bench/run.ts); one section per configuration.\n';
  const text = existsSync(file) ? readFileSync(file, 'utf8') : title;
  const marker = `## ${heading}\n`;
  const section = `${marker}\n${body.trim()}\n`;
  const start = text.indexOf(marker);
  let next: string;
  if (start < 0) {
    next = `${text.trimEnd()}\n\n${section}`;
  } else {
    const after = text.indexOf('\n## ', start + marker.length);
    next = text.slice(0, start) + section + (after < 0 ? '' : `\n${text.slice(after + 1)}`);
  }
  writeFileSync(file, next.trimEnd() + '\n');
}

/**
 * A run's section of bench/RESULTS.md: nothing in a quick run; in a profiled run, the section
 * "Profile: <heading>" with the hot spots and the (profiler-slowed) table; else the results.
 */
export function saveResults(o: {
  heading: string;
  body: string;
  quick: boolean;
  profile?: { command: string; hot: string; table: string; extra?: string };
}): void {
  const file = join(ROOT, 'bench', 'RESULTS.md');
  if (o.quick) console.log('BENCH_QUICK: RESULTS.md not written');
  else if (o.profile) {
    const { command, hot, table, extra } = o.profile;
    const head = [`- Date: ${new Date().toISOString()}`, `- Command: \`${command}\``, ...(extra ? [extra] : [])].join('\n');
    writeSection(file, `Profile: ${o.heading}`, `${head}\n\n${hot}\n\nThe run's numbers with the profiler on:\n\n${table}`);
  } else writeSection(file, o.heading, o.body);
}
