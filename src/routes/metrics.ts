import type { AppContext, AppDeps } from './context.js';
import { PROMETHEUS_CONTENT_TYPE } from '../telemetry/metrics.js';

/**
 * `GET /metrics`: Prometheus text. Unauthenticated, as scrapers expect; it must not be exposed
 * publicly (deploy/nginx restricts it). Labels never carry keys, threads or request ids.
 */
export function metricsRoute(deps: AppDeps) {
  return async (c: AppContext) => {
    const text = await deps.metrics.render();
    return c.body(text, 200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' });
  };
}
