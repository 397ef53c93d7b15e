import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { isDatabaseUnavailable } from './db/deadline.js';
import { GatewayError, UpstreamHttpError, renderError } from './errors.js';
import { accessLog } from './middleware/access-log.js';
import { safeError } from './telemetry/safe-error.js';
import { requireKey } from './middleware/auth.js';
import { recordRejections } from './middleware/record-rejections.js';
import { inputGuard } from './middleware/input-guard.js';
import { requestId } from './middleware/request-id.js';
import { adminRoutes } from './routes/admin.js';
import { adminUsageRoutes } from './routes/admin-usage.js';
import { adminUsageStatsRoutes } from './routes/admin-usage-stats.js';
import { chatCompletions } from './routes/chat-completions.js';
import { dashboardRoutes } from './routes/dashboard.js';
import type { AppDeps, AppEnv } from './routes/context.js';
import { embeddings } from './routes/embeddings.js';
import { responsesRoutes } from './routes/responses.js';
import { completions } from './routes/completions.js';
import { conversationRoutes } from './routes/conversations.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoute } from './routes/metrics.js';
import { apiDocsRoutes } from './routes/openapi.js';
import { setResponseHeader } from './routes/response-headers.js';
import { threadRoutes } from './routes/threads.js';
import { getModel, listModels } from './routes/models.js';

/** The gateway's response headers a browser app may read (rate limits, ids, retry advice). */
const CORS_EXPOSED_HEADERS = [
  'x-request-id',
  'x-thread-id',
  'retry-after',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
  'x-ratelimit-fallback',
  'x-generation-id',
  'x-memory-status',
  'x-should-retry',
];

export interface AppState {
  draining: () => boolean;
}

/** Builds the HTTP app from its dependencies: middleware order, error rendering, routes. */
export function createApp(deps: AppDeps, state: AppState = { draining: () => false }) {
  const app = new Hono<AppEnv>();

  app.use('*', requestId());
  app.use('*', accessLog(deps.requestLog));
  app.use('*', inputGuard());
  if (deps.config.corsOrigins?.length) {
    const origins = deps.config.corsOrigins;
    // Also on the thread-in-path API, and before its auth: a browser's preflight carries no key.
    const corsMiddleware = cors({ origin: origins.includes('*') ? '*' : origins, exposeHeaders: CORS_EXPOSED_HEADERS });
    app.use('/v1/*', corsMiddleware);
    app.use('/t/:thread/v1/*', corsMiddleware);
  }

  app.route('/health', healthRoutes(deps, state));
  app.get('/metrics', metricsRoute(deps));
  app.route('/admin/usage', adminUsageRoutes(deps));
  app.route('/admin/usage', adminUsageStatsRoutes(deps));
  app.route('/admin', adminRoutes(deps));
  app.route('/dashboard', dashboardRoutes(deps));
  app.route('/', apiDocsRoutes());

  const v1 = new Hono<AppEnv>();
  v1.use('*', requireKey(deps.verifier, 'proxy'));
  v1.post('/chat/completions', recordRejections(deps, 'chat.completions'), chatCompletions(deps));
  v1.post('/embeddings', recordRejections(deps, 'embeddings'), embeddings(deps));
  v1.post('/completions', recordRejections(deps, 'completions'), completions(deps));
  v1.route('/responses', responsesRoutes(deps, deps.responses));
  v1.route('/conversations', conversationRoutes(deps, deps.responses));
  v1.get('/models', listModels(deps));
  v1.get('/models/:id{.+}', getModel(deps));
  v1.route('/threads', threadRoutes(deps));
  app.route('/v1', v1);
  // The whole API again with the thread in the path, for apps that can change only their base URL.
  app.route('/t/:thread/v1', v1);

  app.notFound((c) => {
    const err = new GatewayError('unknown_url', unknownUrlMessage(c.req.method, c.req.path));
    return c.json(renderError(err), 404);
  });

  app.onError((err, c) => {
    if (err instanceof GatewayError) {
      for (const [k, v] of Object.entries(err.headers)) setResponseHeader(c, k, v);
      if (err.status >= 500) deps.logger.warn({ request_id: c.get('requestId'), code: err.code, cause: describe(err.cause) }, err.message);
      return c.json(renderError(err), err.status as 400);
    }
    if (err instanceof UpstreamHttpError) {
      for (const [k, v] of Object.entries(err.headers)) setResponseHeader(c, k, v);
      return c.json(err.body, err.status as 400);
    }
    if (isDatabaseUnavailable(err)) {
      deps.logger.warn({ request_id: c.get('requestId'), cause: describe(err) }, 'database unavailable');
      return c.json(
        renderError(
          new GatewayError('service_unavailable', 'The database did not answer in time; retry shortly.', {
            headers: { 'retry-after': '2' },
          }),
        ),
        503,
      );
    }
    const requestIdValue = c.get('requestId');
    deps.logger.error({ request_id: requestIdValue, err }, 'unhandled error');
    const internal = new GatewayError('internal_error', `The gateway had an internal error (request id ${requestIdValue}).`);
    return c.json(renderError(internal), 500);
  });

  return app;
}

/** The proxied API the gateway serves under /v1 (and /t/{thread}/v1), named in every 404. */
const SERVED = [
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/responses',
  '/v1/conversations',
  '/v1/embeddings',
  '/v1/models',
  '/v1/threads',
];

/** OpenAI's 404 wording, plus where the right path is: the base URL missing `/v1`, or OpenRouter's `/api/v1`. */
export function unknownUrlMessage(method: string, path: string): string {
  const base = `Invalid URL (${method} ${path}).`;
  const bare = path.replace(/^\/api(?=\/v1\/)/, '').replace(/^\/(?!v1\/|t\/)/, '/v1/');
  const hint =
    bare !== path && SERVED.some((p) => bare === p || bare.startsWith(`${p}/`))
      ? ` Did you mean ${method} ${bare}? Set the base URL to this gateway's /v1.`
      : '';
  return `${base}${hint} The gateway serves ${SERVED.join(', ')} (also under /t/{thread}/v1/…), /health and /metrics; the API reference is at /docs.`;
}

/** The cause of a 5xx, for the log: codes and a scrubbed message (never SQL, parameters or values). */
function describe(cause: unknown): unknown {
  return cause ? safeError(cause) : undefined;
}
