import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../telemetry/logger.js';
import type { AppEnv } from '../routes/context.js';

/**
 * One JSON line per request: ids, status, timings. Never bodies, keys or headers. For streams the
 * line is written when the handler returns (headers sent); the outcome carries the stream's end.
 */
export const accessLog =
  (logger: Logger): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    await next();
    const started = c.get('startedAt');
    logger.info(
      {
        request_id: c.get('requestId'),
        method: c.req.method,
        path: c.req.routePath === '/*' ? undefined : c.req.routePath,
        status: c.res.status,
        ms: started ? Math.round((performance.now() - started) * 100) / 100 : undefined,
        ...c.get('logFields'),
      },
      'request',
    );
  };
