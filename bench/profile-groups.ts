// Self time of a V8 .cpuprofile summed per package (node_modules/<pkg>, src/<dir>, node internals,
// GC, native), as a share of the busy (non-idle) time: where the CPU goes, at a coarser grain than
// bench/profile-summary.ts. Usage: tsx bench/profile-groups.ts <file.cpuprofile> [skipMs]

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Profile {
  nodes: { id: number; callFrame: { functionName: string; url: string } }[];
  samples: number[];
  timeDeltas: number[];
}

function group(functionName: string, url: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native: V8 builtins, JSON, Buffer)';
  if (url.startsWith('node:')) return 'node internals (http, net, streams)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const src = path.indexOf('/src/');
  if (src >= 0)
    return path
      .slice(src + 1)
      .split('/')
      .slice(0, 2)
      .join('/');
  return path;
}

export function profileGroups(
  file: string,
  skipMs = 0,
): { busyMs: number; idlePct: number; groups: { name: string; ms: number; pct: number }[] } {
  const prof: Profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n.callFrame]));
  const sums = new Map<string, number>();
  let t = 0;
  let total = 0;
  let idle = 0;
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    t += dt;
    if (t < skipMs * 1000) return;
    const f = byId.get(id)!;
    total += dt;
    if (f.functionName === '(idle)') idle += dt;
    else sums.set(group(f.functionName, f.url), (sums.get(group(f.functionName, f.url)) ?? 0) + dt);
  });
  const busy = total - idle;
  const groups = [...sums].map(([name, us]) => ({ name, ms: us / 1000, pct: (us * 100) / busy })).sort((a, b) => b.ms - a.ms);
  return { busyMs: busy / 1000, idlePct: (idle * 100) / total, groups };
}

export function formatProfileGroups(file: string, skipMs = 0, top = 15): string {
  const { busyMs, idlePct, groups } = profileGroups(file, skipMs);
  const lines = [
    `Busy (non-idle) time by package: ${(busyMs / 1000).toFixed(1)} s busy, ${idlePct.toFixed(1)}% of samples idle`,
    '',
    '| % of busy | Self ms | Package |',
    '| ---: | ---: | --- |',
  ];
  for (const g of groups.slice(0, top)) lines.push(`| ${g.pct.toFixed(1)} | ${g.ms.toFixed(0)} | ${g.name} |`);
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [file, skip] = process.argv.slice(2);
  if (!file) {
    console.error('usage: tsx bench/profile-groups.ts <file.cpuprofile> [skipMs]');
    process.exit(2);
  }
  console.log(formatProfileGroups(file, Number(skip ?? 0)));
}
