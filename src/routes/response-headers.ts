import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { AppContext } from './context.js';

/**
 * Response headers the gateway adds (request id, thread, memory status, rate limits) are kept in a
 * plain object per request instead of Hono's `c.header()`, which builds a WHATWG `Headers` (and
 * later a whole `Response`) for every request. They are applied once, when the response is known:
 * onto Hono's response (`applyResponseHeaders`), or written with it straight to Node (`sendDirect`).
 */
export function setResponseHeader(c: AppContext, name: string, value: string): void {
  c.get('resHeaders')[name] = value;
}

/** Copies the collected headers onto the response Hono will write (not onto one already sent). */
export function applyResponseHeaders(c: AppContext): void {
  const res = c.res;
  if (res === RESPONSE_ALREADY_SENT) return;
  const collected = c.get('resHeaders');
  for (const name in collected) res.headers.set(name, collected[name]);
}

/**
 * Writes a whole response to Node's socket with the collected headers, then hands Hono the
 * "already sent" marker so it writes nothing more. Returns that marker for the handler to return.
 */
export function sendDirect(
  c: AppContext,
  outgoing: ServerResponse,
  status: number,
  headers: Record<string, string | number>,
  body?: string,
): Response {
  outgoing.writeHead(status, { ...c.get('resHeaders'), ...headers });
  if (body !== undefined) outgoing.end(body);
  return markSent(c);
}

/**
 * Tells Hono the response went out another way. The marker is assigned itself: merged into another
 * Response (what assigning over an existing one would do) it would be written a second time.
 */
export function markSent(c: AppContext): Response {
  c.res = undefined;
  c.res = RESPONSE_ALREADY_SENT;
  return RESPONSE_ALREADY_SENT;
}
