import { Hono } from 'hono';
import { databaseIdentity } from '../db/identity.js';
import type { WriterStats } from '../usage/ledger-writer.js';
import type { AppDeps, AppEnv } from './context.js';

async function timed(check: () => Promise<unknown>) {
  const t0 = performance.now();
  try {
    await check();
    return { status: 'ok' as const, latency_ms: Math.round((performance.now() - t0) * 100) / 100 };
  } catch (err) {
    return {
      status: 'error' as const,
      latency_ms: Math.round((performance.now() - t0) * 100) / 100,
      error: (err as Error).message?.slice(0, 200),
    };
  }
}

/** `/health` (liveness, with the database fingerprint) and `/health/ready` (database and upstream catalog, with latencies). */
export function healthRoutes(deps: AppDeps, state: { draining: () => boolean }) {
  const health = new Hono<AppEnv>();
  // Which database this gateway serves, as a non-secret fingerprint: the CLI compares it with its own.
  const { kind, fingerprint } = databaseIdentity(deps.config);
  health.get('/', (c) => c.json({ status: 'ok', database: { kind, fingerprint } }));
  const ready = async (c: any) => {
    const [database, catalog, redis] = await Promise.all([
      timed(() => withTimeout(deps.database.ping(), 2_000)),
      timed(() => (deps.catalog.isLoaded() ? Promise.resolve() : withTimeout(deps.catalog.get(), 5_000))),
      deps.redis ? timed(() => withTimeout(deps.redis!.ping(), 1_000)) : Promise.resolve(undefined),
    ]);
    const draining = state.draining();
    const writers = { usage_writer: writerCheck(deps.usage.stats()), memory_writer: writerCheck(deps.memory.stats()) };
    const checks = { database, upstream_catalog: catalog, ...(redis ? { redis } : {}), ...writers };
    // A database or Redis outage degrades this instance (cached keys, spilled records, local limits)
    // but it still serves; failing readiness would pull every replica at once. Not ready: draining,
    // or no model catalog at all (nothing can be routed).
    const degraded =
      database.status !== 'ok' ||
      redis?.status === 'error' ||
      writers.usage_writer.status !== 'ok' ||
      writers.memory_writer.status !== 'ok';
    const ready = !draining && catalog.status === 'ok';
    const status = draining ? 'draining' : !ready ? 'not_ready' : degraded ? 'degraded' : 'ready';
    return c.json({ status, checks }, ready ? 200 : 503);
  };
  health.get('/ready', ready);
  health.get('/detailed', ready);
  return health;
}

/**
 * A durable writer's state: `degraded` while its spill directory cannot be written (records then
 * live in memory only) or once any record was lost; the counts say how many.
 */
function writerCheck(s: WriterStats) {
  const status = s.diskFailing || s.lost > 0 ? ('degraded' as const) : ('ok' as const);
  return { status, pending: s.pending, spilled: s.spilled, quarantined: s.quarantined, lost: s.lost, spill_writable: !s.diskFailing };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]);
}
