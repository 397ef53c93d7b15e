import { startUpstream, startGateway, waitHealthy, freePort, cpuSeconds, stopChild } from '/work/main/bench/procs.ts';
import { mkdtempSync, readFileSync } from 'node:fs';
const tmp = mkdtempSync('/tmp/cmg-idle-');
const up = await startUpstream('sk-or-v1-bench');
const port = await freePort();
const gw = startGateway({ port, cwd: tmp, env: { DATA_DIR: tmp + '/data', OPENROUTER_API_KEY: 'sk-or-v1-bench', OPENROUTER_BASE_URL: `http://127.0.0.1:${up.port}/api/v1`, ADMIN_TOKEN: 'x'.repeat(32), LOG_LEVEL: 'warn' } });
const t0 = Date.now();
await waitHealthy(port, gw);
console.log('healthy after', Date.now() - t0, 'ms');
for (let i = 0; i < 5; i++) {
  const c0 = cpuSeconds(gw.pid!);
  await new Promise((r) => setTimeout(r, 2000));
  const st = readFileSync(`/proc/${gw.pid}/status`, 'utf8');
  console.log('idle cpu %', ((cpuSeconds(gw.pid!) - c0) / 2 * 100).toFixed(0), /VmRSS.*/.exec(st)![0], /Threads.*/.exec(st)![0]);
}
await stopChild(gw); await stopChild(up.child);
