import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../routes/context.js';
import { applyResponseHeaders } from '../routes/response-headers.js';

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Every request gets an id the gateway generates: it keys the usage record, the thread items and
 * the log line. A client's sane `x-request-id` is kept beside it for correlation only (and echoed
 * back, as OpenAI clients expect): twenty requests sharing one client id, in one workspace or
 * many, are still twenty records.
 */
export const requestId = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  const incoming = c.req.header('x-request-id');
  const clientId = incoming && SANE_ID.test(incoming) ? incoming : undefined;
  const id = `req_${randomUUID().replaceAll('-', '')}`;
  c.set('requestId', id);
  c.set('clientRequestId', clientId);
  c.set('startedAt', performance.now());
  c.set('logFields', clientId ? { client_request_id: clientId } : {});
  c.set('resHeaders', { 'x-request-id': clientId ?? id });
  await next();
  applyResponseHeaders(c);
};
