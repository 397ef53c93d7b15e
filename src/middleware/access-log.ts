import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { AppEnv } from '../routes/context.js';
import type { RequestLog } from '../telemetry/request-log.js';

/** Routes whose streamed responses end with an outcome (the log line waits for it). */
const PROXIED_ROUTES = new Set(['/v1/chat/completions', '/v1/embeddings']);

/**
 * One JSON line and one metrics sample per request: ids, route, status, timings; never bodies,
 * keys or headers. A proxied stream is logged when its outcome arrives (its real end and final
 * state), everything else when the handler is done.
 */
export const accessLog =
  (log: RequestLog): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const handle = log.begin(c.get('requestId'));
    let failed = false;
    try {
      await next();
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      const route = routeOf(c);
      const stream = !failed && c.get('streamed') === true;
      log.end(handle, {
        requestId: c.get('requestId'),
        method: c.req.method,
        route,
        status: failed ? 500 : c.res.status,
        durationMs: performance.now() - c.get('startedAt'),
        fields: c.get('logFields'),
        awaitOutcome: stream && PROXIED_ROUTES.has(route),
      });
    }
  };

/**
 * The route pattern that answered (or would have, for a request a middleware refused), with the
 * `/t/:thread` prefix folded into the plain `/v1/...` route: a bounded label, never a raw path.
 */
export function routeOf(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = Math.max(0, c.req.routeIndex); i < routes.length; i++) {
    const r = routes[i];
    if (r.method !== 'ALL') return r.path.startsWith('/t/:thread/') ? r.path.slice(10) : r.path;
  }
  return 'unmatched';
}
