// Child processes for the bench (fake upstream, gateway), their CPU and memory, and a throwaway
// Postgres database. Everything listens on 127.0.0.1 only; every wait is bounded.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startNodeFlags } from '../test/helpers/processes.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = import.meta.resolve('tsx');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `taskset -c <cpus>` prefix when pinning is wanted and possible. */
function pinned(cpus: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return cpus ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, args];
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Spawns a bench script under tsx and waits (at most 20 s) for it to print `PORT <n>`. */
async function startScript(
  script: string,
  env: Record<string, string>,
  cpus: string | undefined,
  nodeFlags: string[] = [],
): Promise<{ child: ChildProcess; port: number }> {
  const [cmd, args] = pinned(cpus, process.execPath, [...nodeFlags, '--import', TSX, `${ROOT}bench/${script}`]);
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within 20 s`)), 20_000);
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return { child, port };
}

export function startUpstream(apiKey: string, cpus?: string): Promise<{ child: ChildProcess; port: number }> {
  return startScript('upstream.ts', { BENCH_UPSTREAM_KEY: apiKey }, cpus);
}

/** The bare reference proxy (bench/reference-proxy.ts), on the gateway's core with the gateway's node flags. */
export function startReferenceProxy(upstreamPort: number, apiKey: string, cpus?: string): Promise<{ child: ChildProcess; port: number }> {
  return startScript(
    'reference-proxy.ts',
    { UPSTREAM_URL: `http://127.0.0.1:${upstreamPort}/api/v1`, UPSTREAM_KEY: apiKey, PORT: '0' },
    cpus,
    startNodeFlags(),
  );
}

export interface GatewayOpts {
  port: number;
  env: Record<string, string>;
  cwd: string;
  cpus?: string;
  cpuProfDir?: string;
}

let built = false;

/** Starts the gateway as `npm start` runs it: compiled once per bench run to dist/, then node with npm start's flags. */
export function startGateway(o: GatewayOpts): ChildProcess {
  if (!built) {
    execFileSync(process.execPath, [`${ROOT}scripts/build.mjs`], { stdio: 'inherit' });
    built = true;
  }
  const prof = o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : [];
  // BENCH_GATEWAY_FLAGS: extra node/V8 flags for the gateway only (e.g. GC settings to compare).
  const extra = (process.env.BENCH_GATEWAY_FLAGS ?? '').split(' ').filter(Boolean);
  const [cmd, args] = pinned(o.cpus, process.execPath, [...prof, ...startNodeFlags(), ...extra, `${ROOT}dist/main.js`]);
  // cwd is a temp dir so no stray .env is read; the rest of the environment is passed through
  // except database/redis settings, which come only from BENCH_* variables.
  const { DATABASE_URL: _d, REDIS_URL: _r, ...env } = process.env;
  return spawn(cmd, args, {
    cwd: o.cwd,
    env: { ...env, ...o.env, PORT: String(o.port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

export async function waitHealthy(port: number, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode} before /health answered`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1_000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`gateway /health did not answer 200 within ${timeoutMs} ms`);
}

/** Creates a workspace and a proxy key through the admin API; returns the key. */
export async function createKey(port: number, adminToken: string): Promise<string> {
  const post = async (path: string, body: object) => {
    const res = await fetch(`http://127.0.0.1:${port}/admin${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const json: any = await res.json();
    if (res.status !== 201) throw new Error(`POST /admin${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  await post('/workspaces', { name: 'bench' });
  const { key } = await post('/keys', { workspace: 'bench', name: 'bench' });
  return key;
}

export async function stopChild(child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(timeoutMs)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(2_000)]);
  }
}

/** CPU seconds (user+system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** CPU seconds all processes on the machine have used (busy time from /proc/stat), for spotting other load. */
export function machineBusySeconds(): number {
  const [, ...f] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return (user + nice + system + irq + softirq + (steal ?? 0)) / 100;
}

/** Polls VmRSS every 100 ms and keeps the maximum; `stop()` also reads VmHWM (the kernel's peak). */
export function watchRss(pid: number) {
  let peakRssKb = 0;
  const read = (field: string) => {
    try {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) : 0;
    } catch {
      return 0;
    }
  };
  const timer = setInterval(() => (peakRssKb = Math.max(peakRssKb, read('VmRSS'))), 100);
  return {
    stop() {
      clearInterval(timer);
      const hwm = read('VmHWM');
      return { peakRssMb: Math.max(peakRssKb, hwm) / 1024, polledPeakMb: peakRssKb / 1024, hwmMb: hwm / 1024 };
    },
  };
}

/** Creates `cmg_bench_<random>` on the server of `url`; returns its URL and a drop function. */
export async function createScratchDatabase(url: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const { default: postgres } = await import('postgres');
  const name = `cmg_bench_${randomBytes(4).toString('hex')}`;
  const admin = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const u = new URL(url);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end({ timeout: 5 });
    },
  };
}

/**
 * Pins the machine's own service processes (found by exact name, e.g. `postgres`, `redis-server`)
 * to `cpus` for the run, so the gateway's pinned core is really its own: unpinned, Postgres's
 * ledger inserts were scheduled on it and showed up in the gateway's tail latency. New Postgres
 * backends fork from the pinned postmaster and inherit its affinity. Returns what to call at the
 * end to give each process its previous affinity back, and a line describing what was pinned.
 */
export function pinServices(names: string[], cpus: string): { restore: () => void; note: string } {
  const saved: [pid: string, list: string][] = [];
  const pinnedNames: string[] = [];
  for (const name of names) {
    let pids: string[];
    try {
      pids = execFileSync('pgrep', ['-x', name], { encoding: 'utf8' }).split('\n').filter(Boolean);
    } catch {
      continue; // not running here (or no pgrep)
    }
    let any = false;
    for (const pid of pids) {
      try {
        const list = /:\s*(\S+)\s*$/.exec(execFileSync('taskset', ['-p', '-c', pid], { encoding: 'utf8' }))?.[1];
        if (!list) continue;
        execFileSync('taskset', ['-a', '-p', '-c', cpus, pid], { stdio: 'ignore' });
        saved.push([pid, list]);
        any = true;
      } catch {
        // gone meanwhile, or not ours to pin
      }
    }
    if (any) pinnedNames.push(name);
  }
  const restore = () => {
    for (const [pid, list] of saved.splice(0)) {
      try {
        execFileSync('taskset', ['-a', '-p', '-c', list, pid], { stdio: 'ignore' });
      } catch {
        // exited meanwhile
      }
    }
  };
  return {
    restore,
    note: pinnedNames.length
      ? `${pinnedNames.join(' and ')} pinned to core ${cpus} for the run`
      : 'no local database or cache processes pinned',
  };
}

/**
 * The gateway's own event-loop delay (p99 and max, ms) since its previous /metrics scrape, from
 * `cmg_event_loop_delay_seconds` (a scrape resets it). Null when the scrape fails.
 */
export async function eventLoopDelay(port: number): Promise<{ p99Ms: number; maxMs: number } | null> {
  try {
    const text = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.text());
    const q = (quantile: string) =>
      Number(new RegExp(`^cmg_event_loop_delay_seconds\\{[^}]*quantile="${quantile}"[^}]*\\} (\\S+)`, 'm').exec(text)?.[1]) * 1000;
    const d = { p99Ms: q('0.99'), maxMs: q('1') };
    return Number.isFinite(d.maxMs) ? d : null;
  } catch {
    return null;
  }
}

interface Guard {
  push(fn: () => Promise<unknown>): void;
}

/**
 * The local Postgres and Redis (when the run uses them) pinned to `cpus` for the run, so the
 * gateway's core is its own; returns the note for the results. Restored by the guard.
 */
export function pinBenchServices(guard: Guard, o: { pin: boolean; databaseUrl?: string; redisUrl?: string; cpus?: string }): string {
  if (!o.pin || (!o.databaseUrl && !o.redisUrl)) return 'local services not pinned';
  const pinned = pinServices([...(o.databaseUrl ? ['postgres'] : []), ...(o.redisUrl ? ['redis-server'] : [])], o.cpus ?? '0');
  guard.push(async () => pinned.restore());
  return pinned.note;
}

/**
 * The gateway env the benches use: its own DATA_DIR, the fake upstream, a fresh admin token, quiet
 * logs, and a scratch database on `databaseUrl` (made now, dropped by the guard) and Redis if given.
 */
export async function benchGatewayEnv(
  guard: Guard,
  o: {
    dataDir: string;
    upstreamPort: number;
    upstreamKey: string;
    databaseUrl?: string;
    redisUrl?: string;
    extra?: Record<string, string>;
  },
): Promise<Record<string, string> & { ADMIN_TOKEN: string }> {
  const env: Record<string, string> & { ADMIN_TOKEN: string } = {
    DATA_DIR: o.dataDir,
    OPENROUTER_API_KEY: o.upstreamKey,
    OPENROUTER_BASE_URL: `http://127.0.0.1:${o.upstreamPort}/api/v1`,
    ADMIN_TOKEN: randomBytes(24).toString('hex'),
    LOG_LEVEL: 'warn',
    ...o.extra,
  };
  if (o.databaseUrl) {
    const db = await createScratchDatabase(o.databaseUrl);
    guard.push(db.drop);
    env.DATABASE_URL = db.url;
    console.log(`scratch database: ${db.url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@')}`);
  }
  if (o.redisUrl) env.REDIS_URL = o.redisUrl;
  return env;
}
