import { Pool, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import { GatewayError, UpstreamHttpError, mapUpstreamError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { UpstreamCounts } from '../telemetry/metrics.js';
import type { AbortLike } from './aborter.js';
import { createRetryBudget, type RetryBudget } from './retry-budget.js';
import { createSlots, type Slots } from './slots.js';

export interface UpstreamRequest {
  /** Path under the upstream base URL, e.g. `/chat/completions`. */
  path: string;
  method: 'GET' | 'POST';
  body?: string | Buffer;
  headers?: Record<string, string>;
  signal: AbortLike;
  /**
   * A stream request: its response headers come at once (OpenRouter then keeps the stream alive
   * with comments), so the wait for them is bounded by the idle timeout, not the whole-request one.
   */
  stream?: boolean;
  /** Called once the request has a connection slot (the whole-request deadline starts then). */
  onDispatch?: () => void;
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
  /** Bound on the wait for response headers of a non-stream request. */
  headersTimeoutMs: number;
  /** Bound on a gap between body bytes (and on the wait for a stream's headers). */
  idleTimeoutMs: number;
  connectTimeoutMs?: number;
  maxRetries: number;
  /** Retries allowed as a share of requests (0.2: one retry per five requests), over a floor. */
  retryBudgetRatio?: number;
  /** Upstream connections at most (0: no cap); beyond, requests wait up to `queueTimeoutMs`. */
  maxConnections?: number;
  queueTimeoutMs?: number;
  /** Backoff before retry n (1-based); injectable so tests stay fast. */
  backoffMs?: (attempt: number) => number;
  now?: () => number;
  /** Where a refused upstream key is reported (at error level, at most once a minute). */
  logger?: Pick<Logger, 'error'>;
}

/** What /metrics shows of the upstream client (see UpstreamCounts in telemetry/metrics.ts). */
export type UpstreamStats = UpstreamCounts;

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

/** Bytes of an upstream error body read at most (the rest is dropped). */
const ERROR_BODY_MAX_BYTES = 65_536;

/**
 * The upstream client: undici's `request` API over one keep-alive Pool (global fetch costs ~4×
 * the CPU per request here). Retries connection failures and 5xx answers, only before the first
 * byte of a response reached anyone, at most `maxRetries` times with backoff and within a retry
 * budget; a request whose client is gone is never sent (nor retried).
 */
export function createUpstreamClient(opts: UpstreamClientOptions) {
  const base = new URL(opts.baseUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  const maxConnections = opts.maxConnections ?? 0;
  const pool = new Pool(base.origin, {
    // No hidden cap: undici's own queue would make waiting invisible and count against deadlines.
    connections: maxConnections > 0 ? maxConnections : null,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: opts.idleTimeoutMs,
    connectTimeout: opts.connectTimeoutMs ?? 10_000,
  });
  const slots: Slots | null = maxConnections > 0 ? createSlots(maxConnections) : null;
  const queueTimeoutMs = opts.queueTimeoutMs ?? 10_000;
  const budget: RetryBudget = createRetryBudget({ ratio: opts.retryBudgetRatio ?? 0.2 });
  const backoff = opts.backoffMs ?? defaultBackoff;
  const now = opts.now ?? (() => performance.now());
  let running = 0;
  let queueTimeouts = 0;
  const streamHeadersTimeoutMs = Math.min(opts.idleTimeoutMs, opts.headersTimeoutMs);

  function attempt(req: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    return pool.request({
      path: basePath + req.path,
      method: req.method,
      body: req.body,
      signal: req.signal, // an Aborter or an AbortSignal: undici takes either shape
      headersTimeout: req.stream ? streamHeadersTimeoutMs : opts.headersTimeoutMs,
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
    if (slots) {
      try {
        await slots.acquire(queueTimeoutMs, req.signal);
      } catch (err) {
        if (req.signal.aborted) throw err;
        queueTimeouts++;
        throw new GatewayError(
          'upstream_unavailable',
          `All ${maxConnections} upstream connections stayed busy for ${queueTimeoutMs} ms (UPSTREAM_MAX_CONNECTIONS); retry shortly.`,
          { headers: { 'retry-after': '1' }, cause: err },
        );
      }
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      running--;
      slots?.release();
    };
    running++;
    budget.deposit();
    req.onDispatch?.();
    try {
      const res = await sendWithRetries(req, started);
      // The slot is the connection: held until the body is over (read, dropped or failed).
      if (res.body.destroyed || res.body.readableEnded) release();
      else res.body.once('close', release);
      return res;
    } catch (err) {
      release();
      throw err;
    }
  }

  async function sendWithRetries(req: UpstreamRequest, started: number): Promise<UpstreamResponse> {
    let lastError: unknown;
    for (let n = 0; ; n++) {
      // The client may have gone while the gateway waited (on the database, a backoff, a slot).
      if (req.signal.aborted) throw req.signal.reason;
      let res: Dispatcher.ResponseData | undefined;
      try {
        res = await attempt(req);
      } catch (err) {
        if (req.signal.aborted) throw err;
        if (isHeadersTimeout(err)) {
          throw new GatewayError('upstream_timeout', 'The upstream did not answer in time.', {
            cause: err,
            headers: retriedHeaders(n > 0),
          });
        }
        if (!isRetryable(err)) {
          throw new GatewayError('upstream_unavailable', 'The upstream could not be reached.', {
            cause: err,
            headers: retriedHeaders(n > 0),
          });
        }
        lastError = err;
      }
      if (res && res.statusCode < 500) {
        if (res.statusCode >= 400) throw await upstreamFailure(res, n > 0);
        return { status: res.statusCode, headers: res.headers, body: res.body, headersAt: now() - started, attempts: n + 1 };
      }
      // Retried only with attempts left and the budget's leave (it keeps an outage from tripling load).
      const attemptsLeft = n < opts.maxRetries;
      if (!attemptsLeft || !budget.withdraw()) {
        // Either the gateway already retried or a retry was refused: the SDK must not retry on top.
        const final = n > 0 || attemptsLeft;
        if (res) throw await upstreamFailure(res, final);
        throw new GatewayError('upstream_unavailable', 'The upstream could not be reached.', {
          cause: lastError,
          headers: retriedHeaders(final),
        });
      }
      res?.body.resume();
      await sleep(backoff(n + 1), req.signal);
    }
  }

  // The gateway's own key refused: the operator's problem, logged (without the key) once a minute.
  let authLoggedAt = -Infinity;
  let authRefusals = 0;
  async function upstreamFailure(res: Dispatcher.ResponseData, final: boolean): Promise<UpstreamHttpError> {
    const err = await toUpstreamError(res, final);
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
    stats(): UpstreamStats {
      const s = pool.stats;
      const b = budget.stats();
      return { connected: s.connected, running, queued: slots?.waiting() ?? 0, retries: b.retries, retriesDenied: b.denied, queueTimeouts };
    },
    close: () => pool.close(),
  };
}

export type UpstreamClient = ReturnType<typeof createUpstreamClient>;

/** After a retry by the gateway (or one refused), the SDK retrying on top would multiply attempts. */
const retriedHeaders = (final: boolean): Record<string, string> => (final ? { 'x-should-retry': 'false' } : {});

async function toUpstreamError(res: Dispatcher.ResponseData, final: boolean): Promise<UpstreamHttpError> {
  let payload: unknown;
  try {
    const text = await readCapped(res.body, ERROR_BODY_MAX_BYTES);
    try {
      payload = JSON.parse(text);
    } catch {
      payload = text;
    }
  } catch {
    payload = undefined;
  }
  const err = mapUpstreamError(res.statusCode, payload, res.headers);
  // The gateway already retried this 5xx (or its retry budget is spent): the client's SDK
  // retrying too would multiply attempts.
  if (final) err.headers['x-should-retry'] = 'false';
  return err;
}

/** The first `max` bytes of a body as text; the rest is dropped and the body destroyed. */
function readCapped(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      if (size >= max) return;
      parts.push(chunk);
      size += chunk.length;
      if (size >= max) {
        body.destroy();
        resolve(Buffer.concat(parts).subarray(0, max).toString('utf8'));
      }
    });
    body.once('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    body.once('error', (err) => (size >= max ? undefined : reject(err)));
  });
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
