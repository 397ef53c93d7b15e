// Summarizes a V8 .cpuprofile (from `node --cpu-prof`): self time per function, top N.
// Usage: tsx bench/profile-summary.ts <file.cpuprofile> [N] [skipMs]

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  name: string;
  where: string;
  selfMs: number;
  percent: number;
}

function shortUrl(url: string): string {
  if (!url) return '';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) return path.slice(nm + 'node_modules/'.length);
  const src = path.indexOf('/src/');
  return src >= 0 ? path.slice(src + 1) : path;
}

/** Self time per function (summed over call sites), highest first; samples in the first `skipMs` are left out. */
export function hotSpots(file: string, top = 25, skipMs = 0): { total: number; spots: HotSpot[]; idlePercent: number } {
  const prof: Profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = 0;
  prof.samples.forEach((id, i) => {
    t += prof.timeDeltas[i] ?? 0;
    if (t >= skipMs * 1000) selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  });
  const totals = new Map<string, HotSpot>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    total += us;
    if (f.functionName === '(idle)') idle += us;
    const name = f.functionName || '(anonymous)';
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${name} ${where}`;
    const spot = totals.get(key) ?? { name, where, selfMs: 0, percent: 0 };
    spot.selfMs += us / 1000;
    totals.set(key, spot);
  }
  const spots = [...totals.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
  for (const s of spots) s.percent = (s.selfMs * 1000 * 100) / total;
  return { total: total / 1000, spots, idlePercent: (idle * 100) / total };
}

export function formatHotSpots(file: string, top = 25, skipMs = 0): string {
  const { total, spots, idlePercent } = hotSpots(file, top, skipMs);
  const skipped = skipMs ? ` after skipping the first ${(skipMs / 1000).toFixed(1)} s (start-up, warm-up)` : '';
  const lines = [
    `Profile ${file}: ${(total / 1000).toFixed(1)} s sampled${skipped}, ${idlePercent.toFixed(1)}% idle`,
    '',
    '| Self % | Self ms | Function | Where |',
    '| ---: | ---: | --- | --- |',
  ];
  for (const s of spots) lines.push(`| ${s.percent.toFixed(1)} | ${s.selfMs.toFixed(0)} | ${s.name} | ${s.where} |`);
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [file, n, skip] = process.argv.slice(2);
  if (!file) {
    console.error('usage: tsx bench/profile-summary.ts <file.cpuprofile> [N] [skipMs]');
    process.exit(2);
  }
  console.log(formatHotSpots(file, Number(n ?? 25), Number(skip ?? 0)));
}
