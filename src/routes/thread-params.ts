import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { jsonSchemaOf } from './body-schema.js';
import type { MemoryMode } from '../memory/memory-service.js';
import type { AppContext } from './context.js';

/**
 * 1-128 of `A-Z a-z 0-9 . _ : -`, but not `.` or `..`: URL parsers resolve those as dot segments, so
 * such a thread could be created through a header or body and never reached at `/v1/threads/{id}`.
 */
export const THREAD_ID = /^(?!\.\.?$)[A-Za-z0-9._:-]{1,128}$/;

/** A thread id, as documented (headers, path parameters, `metadata.thread_id`). */
export const threadIdSchema = z
  .string()
  .regex(THREAD_ID)
  .meta({ description: 'A thread id: 1-128 characters of A-Z a-z 0-9 . _ : - (not "." or "..").', examples: ['support-42'] });

/**
 * `metadata` of a proxied request: passed through, but for the gateway's own `thread_id` (checked
 * in resolveThread, as X-Thread-Id takes precedence over it, and never forwarded).
 */
export const THREAD_METADATA = z
  .unknown()
  .optional()
  .meta({
    description:
      "Passed through, except `thread_id`: the gateway's own field (joins the request to a thread unless X-Thread-Id is sent; never forwarded).",
    properties: { thread_id: jsonSchemaOf(threadIdSchema) },
  });

export function checkThreadId(id: string, param: string): string {
  if (!THREAD_ID.test(id)) {
    throw new GatewayError('invalid_value', `Invalid thread id: use 1-128 characters of A-Z a-z 0-9 . _ : - (not "." or "..")`, { param });
  }
  return id;
}

/**
 * The thread a request joins, by precedence: `X-Thread-Id`, then `metadata.thread_id` in the body
 * (the gateway's own field, never forwarded), then `/t/{id}/v1/…` in the path.
 */
export function resolveThread(c: AppContext, body: Record<string, any>): string | null {
  const header = c.req.header('x-thread-id');
  if (header !== undefined) return checkThreadId(header.trim(), 'X-Thread-Id');
  const fromBody = body.metadata && typeof body.metadata === 'object' ? body.metadata.thread_id : undefined;
  if (fromBody !== undefined && fromBody !== null) {
    if (typeof fromBody !== 'string')
      throw new GatewayError('invalid_value', 'metadata.thread_id must be a string.', { param: 'metadata.thread_id' });
    return checkThreadId(fromBody, 'metadata.thread_id');
  }
  const fromPath = c.req.param('thread');
  return fromPath ? checkThreadId(fromPath, 'thread') : null;
}

/** The body without the gateway's own `metadata.thread_id` (dropping `metadata` if that was all). */
export function withoutGatewayFields(body: Record<string, any>): Record<string, any> {
  if (!body.metadata || typeof body.metadata !== 'object' || !('thread_id' in body.metadata)) return body;
  const { thread_id: _omit, ...rest } = body.metadata;
  const out = { ...body, metadata: rest };
  if (Object.keys(rest).length === 0) delete out.metadata;
  return out;
}

const MODES: MemoryMode[] = ['off', 'read', 'write', 'readwrite'];

/** `X-Memory: off | read | write | readwrite` (default readwrite) and `X-Memory-Max-Tokens`. */
export function memoryOptions(c: AppContext): { mode: MemoryMode; maxTokens?: number } {
  const raw = c.req.header('x-memory')?.trim().toLowerCase();
  if (raw !== undefined && !MODES.includes(raw as MemoryMode)) {
    throw new GatewayError('invalid_value', `X-Memory must be one of ${MODES.join(', ')}.`, { param: 'X-Memory' });
  }
  const max = c.req.header('x-memory-max-tokens');
  let maxTokens: number | undefined;
  if (max !== undefined) {
    maxTokens = Number(max);
    if (!/^\d+$/.test(max.trim()) || !Number.isSafeInteger(maxTokens)) {
      throw new GatewayError('invalid_value', 'X-Memory-Max-Tokens must be a non-negative whole number.', { param: 'X-Memory-Max-Tokens' });
    }
  }
  return { mode: (raw as MemoryMode | undefined) ?? 'readwrite', maxTokens };
}
