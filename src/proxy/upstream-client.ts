import { Pool, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import { GatewayError, UpstreamHttpError, mapUpstreamError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { AbortLike } from './aborter.js';

export interface UpstreamRequest {
  /** Path under the upstream base URL, e.g. `/chat/completions`. */
  path: string;
  method: 'GET' | 'POST';
  body?: string | Buffer;
  headers?: Record<string, string>;
  signal: AbortLike;
}

export interface UpstreamResponse {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Dispatcher.ResponseData['body'];
  /** ms since the call started when the upstream's response headers arrived (after retries). */
  headersAt: number;
  attempts: number;
}

export interface UpstreamClientOptions {
  baseUrl: string;
  apiKey: string | undefined;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  maxRetries: number;
  connections?: number;
  /** Backoff before retry n (1-based); injectable so tests stay fast. */
  backoffMs?: (attempt: number) => number;
  now?: () => number;
  /** Where a refused upstream key is reported (at error level, at most once a minute). */
  logger?: Pick<Logger, 'error'>;
}

const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

const defaultBackoff = (attempt: number) => Math.min(1_000, 100 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);

/**
 * The upstream client: undici's `request` API over one keep-alive Pool (global fetch costs ~4×
 * the CPU per request here). Retries connection failures and 5xx answers, only before the first
 * byte of a response reached anyone, at most `maxRetries` times with backoff.
 */
export function createUpstreamClient(opts: UpstreamClientOptions) {
  const base = new URL(opts.baseUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  const pool = new Pool(base.origin, {
    connections: opts.connections ?? 256,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: opts.idleTimeoutMs,
  });
  const backoff = opts.backoffMs ?? defaultBackoff;
  const now = opts.now ?? (() => performance.now());

  async function attempt(req: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    return pool.request({
      path: basePath + req.path,
      method: req.method,
      body: req.body,
      signal: req.signal as AbortSignal, // an Aborter or an AbortSignal: undici takes either shape
      headers: {
        authorization: `Bearer ${opts.apiKey}`,
        'accept-encoding': 'identity',
        ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...req.headers,
      },
    });
  }

  async function send(req: UpstreamRequest): Promise<UpstreamResponse> {
    if (!opts.apiKey) {
      throw new GatewayError('upstream_not_configured', 'The gateway has no upstream API key (OPENROUTER_API_KEY is unset).');
    }
    const started = now();
    let lastError: unknown;
    for (let n = 0; n <= opts.maxRetries; n++) {
      if (n > 0) await sleep(backoff(n), req.signal);
      let res: Dispatcher.ResponseData;
      try {
        res = await attempt(req);
      } catch (err) {
        if (req.signal.aborted) throw err;
        if (isHeadersTimeout(err)) {
          throw new GatewayError('upstream_timeout', 'The upstream did not answer in time.', { cause: err });
        }
        lastError = err;
        if (isRetryable(err)) continue;
        throw new GatewayError('upstream_unavailable', 'The upstream could not be reached.', { cause: err });
      }
      if (res.statusCode >= 500 && n < opts.maxRetries) {
        res.body.resume();
        lastError = res;
        continue;
      }
      if (res.statusCode >= 400) throw await upstreamFailure(res, n > 0);
      return { status: res.statusCode, headers: res.headers, body: res.body, headersAt: now() - started, attempts: n + 1 };
    }
    throw new GatewayError('upstream_unavailable', 'The upstream could not be reached.', { cause: lastError });
  }

  // The gateway's own key refused: the operator's problem, logged (without the key) once a minute.
  let authLoggedAt = -Infinity;
  let authRefusals = 0;
  async function upstreamFailure(res: Dispatcher.ResponseData, retried: boolean): Promise<UpstreamHttpError> {
    const err = await toUpstreamError(res, retried);
    if (err.body.error.code === 'upstream_auth_failed') {
      authRefusals++;
      if (now() - authLoggedAt >= 60_000) {
        opts.logger?.error(
          {
            code: 'upstream_auth_failed',
            upstream_status: res.statusCode,
            upstream_message: err.body.error.upstream?.message.slice(0, 200),
            refusals: authRefusals,
          },
          "OpenRouter refused the gateway's API key: check OPENROUTER_API_KEY",
        );
        authLoggedAt = now();
        authRefusals = 0;
      }
    }
    return err;
  }

  return {
    send,
    close: () => pool.close(),
  };
}

export type UpstreamClient = ReturnType<typeof createUpstreamClient>;

async function toUpstreamError(res: Dispatcher.ResponseData, retried: boolean): Promise<UpstreamHttpError> {
  let payload: unknown;
  try {
    const text = await res.body.text();
    try {
      payload = JSON.parse(text);
    } catch {
      payload = text;
    }
  } catch {
    payload = undefined;
  }
  const err = mapUpstreamError(res.statusCode, payload, res.headers);
  // The gateway already retried this 5xx: the client's SDK retrying too would multiply attempts.
  if (retried) err.headers['x-should-retry'] = 'false';
  return err;
}

function isHeadersTimeout(err: unknown): boolean {
  return err instanceof undiciErrors.HeadersTimeoutError;
}

function isRetryable(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? (err as { cause?: { code?: string } })?.cause?.code;
  return !!code && RETRYABLE_CODES.has(code);
}

function sleep(ms: number, signal: AbortLike): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
