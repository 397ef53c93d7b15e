import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../routes/context.js';
import { applyResponseHeaders } from '../routes/response-headers.js';

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keeps an incoming `x-request-id` when it is sane, else makes one; echoes it on every response. */
export const requestId = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  const incoming = c.req.header('x-request-id');
  const id = incoming && SANE_ID.test(incoming) ? incoming : `req_${randomUUID().replaceAll('-', '')}`;
  c.set('requestId', id);
  c.set('startedAt', performance.now());
  c.set('logFields', {});
  c.set('resHeaders', { 'x-request-id': id });
  await next();
  applyResponseHeaders(c);
};
