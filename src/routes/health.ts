import { Hono } from 'hono';
import type { AppDeps, AppEnv } from './context.js';

async function timed(check: () => Promise<unknown>) {
  const t0 = performance.now();
  try {
    await check();
    return { status: 'ok' as const, latency_ms: Math.round((performance.now() - t0) * 100) / 100 };
  } catch (err) {
    return { status: 'error' as const, latency_ms: Math.round((performance.now() - t0) * 100) / 100, error: (err as Error).message?.slice(0, 200) };
  }
}

/** `/health` (liveness) and `/health/ready` (database and upstream catalog, with latencies). */
export function healthRoutes(deps: AppDeps, state: { draining: () => boolean }) {
  const health = new Hono<AppEnv>();
  health.get('/', (c) => c.json({ status: 'ok' }));
  const ready = async (c: any) => {
    const [database, catalog, redis] = await Promise.all([
      timed(() => withTimeout(deps.database.ping(), 2_000)),
      timed(() => (deps.catalog.isLoaded() ? Promise.resolve() : withTimeout(deps.catalog.get(), 5_000))),
      deps.redis ? timed(() => withTimeout(deps.redis!.ping(), 1_000)) : Promise.resolve(undefined),
    ]);
    const draining = state.draining();
    const checks = { database, upstream_catalog: catalog, ...(redis ? { redis } : {}) };
    // A database or Redis outage degrades this instance (cached keys, spilled records, local limits)
    // but it still serves; failing readiness would pull every replica at once. Not ready: draining,
    // or no model catalog at all (nothing can be routed).
    const degraded = database.status !== 'ok' || redis?.status === 'error';
    const ready = !draining && catalog.status === 'ok';
    const status = draining ? 'draining' : !ready ? 'not_ready' : degraded ? 'degraded' : 'ready';
    return c.json({ status, checks }, ready ? 200 : 503);
  };
  health.get('/ready', ready);
  health.get('/detailed', ready);
  return health;
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
