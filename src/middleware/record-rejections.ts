import type { MiddlewareHandler } from 'hono';
import { GatewayError } from '../errors.js';
import type { RequestOutcome } from '../proxy/outcome.js';
import type { AppEnv, AppDeps } from '../routes/context.js';
import { outcomeEmitter } from '../routes/outcome-emitter.js';

/**
 * A proxied route's request that got past authentication and was refused by the gateway itself
 * before any outcome was recorded (bad JSON, missing fields, 413, 415, a bad thread id, no upstream
 * configured…) still gets its one usage record: status `rejected` with the HTTP status it was
 * answered with, so reports count it as an error. Mounted after `requireKey`: an unauthenticated
 * request has no workspace to bill and is not recorded.
 */
export const recordRejections =
  (deps: AppDeps, route: RequestOutcome['route']): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    await next();
    if (c.get('outcomeEmitted') || c.res.status < 400) return;
    const model = c.get('logFields').model;
    const emit = outcomeEmitter(c, deps, { route, requestedModel: typeof model === 'string' ? model : null, stream: false, request: null });
    emit({ status: 'rejected', httpStatus: c.res.status, errorCode: c.error instanceof GatewayError ? c.error.code : null });
  };
