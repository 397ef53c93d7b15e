// How much a core is taken away from a busy process: a spin loop pinned to the core reads the
// clock without pause, and every gap between two reads longer than 0.1 ms is time the process did
// not run (host preemption of the virtual CPU, interrupts, other tasks). On a quiet machine the
// gaps are rare and short; on a shared VM they set a floor under any p99 that crosses the core.

import { execFileSync } from 'node:child_process';

export interface Stalls {
  core: string;
  /** how long the loop spun */
  ms: number;
  /** share of the spin time lost in gaps over 0.1 ms */
  lostPct: number;
  count: number;
  maxMs: number;
  /** gaps of 1 ms or more */
  over1ms: number;
}

const SPIN = `
const end = performance.now() + Number(process.argv[1]);
const gaps = [];
let last = performance.now();
for (;;) {
  const t = performance.now();
  if (t - last > 0.1) gaps.push(t - last);
  last = t;
  if (t > end) break;
}
console.log(JSON.stringify(gaps));`;

/** Spins on `core` for `ms` and reports the gaps. Returns null where taskset is missing. */
export function measureStalls(core: string, ms: number): Stalls | null {
  let out: string;
  try {
    out = execFileSync('taskset', ['-c', core, process.execPath, '-e', SPIN, String(ms)], { encoding: 'utf8', timeout: ms + 10_000 });
  } catch {
    return null;
  }
  const gaps: number[] = JSON.parse(out);
  const lost = gaps.reduce((a, b) => a + b, 0);
  return {
    core,
    ms,
    lostPct: (lost / ms) * 100,
    count: gaps.length,
    maxMs: gaps.length ? Math.max(...gaps) : 0,
    over1ms: gaps.filter((g) => g >= 1).length,
  };
}

export function describeStalls(s: Stalls): string {
  return `core ${s.core}: ${s.lostPct.toFixed(1)}% of ${s.ms / 1000} s lost in ${s.count} gaps over 0.1 ms, ${s.over1ms} of them ≥ 1 ms, longest ${s.maxMs.toFixed(1)} ms`;
}
