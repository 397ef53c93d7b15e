import { Aborter, type AbortLike } from './aborter.js';
import type { ClientSignal } from './client-signal.js';
import { GatewayError, UpstreamHttpError, normalizeUpstreamError, readableText } from '../errors.js';
import type { UpstreamResponse } from './upstream-client.js';

/** Client headers worth passing on to OpenRouter (attribution); nothing else crosses. */
const PASSED_HEADERS = ['http-referer', 'x-title', 'x-openrouter-title'];

/** Headers for the upstream call: attribution headers the client sent, and our request id (tracing). */
export function pickUpstreamHeaders(get: (name: string) => string | undefined, requestId: string): Record<string, string> {
  const out: Record<string, string> = { 'x-request-id': requestId };
  for (const name of PASSED_HEADERS) {
    const value = get(name);
    if (value) out[name] = value;
  }
  return out;
}

/** Upstream response headers worth relaying; hop-by-hop and encoding/length headers never are. */
export function relayedHeaders(res: UpstreamResponse): Record<string, string> {
  const out: Record<string, string> = {};
  const gen = res.headers['x-generation-id'];
  if (typeof gen === 'string') out['x-generation-id'] = gen;
  return out;
}

export interface ForwardHandle {
  signal: AbortLike;
  abort: (reason: Error) => void;
  timedOut: () => boolean;
  /** The request got its upstream connection: the whole-request deadline runs from now. */
  dispatched: () => void;
  /** Stops the deadline timer and the early client-abort hook. */
  settle: () => void;
}

/**
 * One upstream call's lifetime: a whole-request deadline (from the moment the request has a
 * connection, so waiting for one never eats it), and a client disconnect that aborts the upstream
 * request (with an Error reason, which undici needs to tear the socket down). A client already
 * gone (it left while the gateway waited on the database, say) aborts it before anything is sent.
 */
export function startForward(clientSignal: ClientSignal, deadlineMs: number): ForwardHandle {
  const controller = new Aborter();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  const onClientAbort = () => controller.abort(new Error('client disconnected'));
  if (clientSignal.aborted) onClientAbort();
  else clientSignal.addEventListener('abort', onClientAbort, { once: true });
  return {
    signal: controller,
    abort: (reason) => controller.abort(reason),
    timedOut: () => timedOut,
    dispatched() {
      if (timer || settled) return;
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort(new Error('upstream deadline exceeded'));
      }, deadlineMs);
    },
    settle() {
      settled = true;
      clearTimeout(timer);
      clientSignal.removeEventListener('abort', onClientAbort);
    },
  };
}

/**
 * Classifies a failure of the upstream call before any response byte was relayed. `answered`: the
 * upstream had already answered 200 (the body failed or was too large); the generation ran and was
 * billed, so the client's SDK is told not to run (and pay for) it again.
 */
export function classifyFailure(err: unknown, handle: ForwardHandle, clientSignal: ClientSignal, answered = false) {
  const result = classify(err, handle, clientSignal);
  if (answered && result.error instanceof GatewayError) result.error.headers['x-should-retry'] = 'false';
  return result;
}

function classify(err: unknown, handle: ForwardHandle, clientSignal: ClientSignal) {
  if (clientSignal.aborted) {
    const error = new GatewayError('client_closed_request', 'The client closed the request before the answer.', { cause: err });
    return { status: 'client_aborted' as const, httpStatus: 499, error };
  }
  if (handle.timedOut()) {
    const error = new GatewayError('upstream_timeout', 'The upstream did not answer in time.', { cause: err });
    return { status: 'timeout' as const, httpStatus: 504, error };
  }
  if (err instanceof GatewayError) {
    return {
      status: err.code === 'upstream_timeout' ? ('timeout' as const) : ('upstream_error' as const),
      httpStatus: err.status,
      error: err,
    };
  }
  if (err instanceof UpstreamHttpError) {
    return {
      status: err.body.error.code === 'upstream_timeout' ? ('timeout' as const) : ('upstream_error' as const),
      httpStatus: err.status,
      error: err,
    };
  }
  const error = new GatewayError('upstream_unavailable', 'The upstream could not be reached.', { cause: err });
  return { status: 'upstream_error' as const, httpStatus: 503, error };
}

/**
 * A non-stream upstream body as text, at most `maxBytes` of it: beyond, the body is dropped and the
 * answer is a 502 (one huge reply must not take the process's memory).
 */
export function readUpstreamBody(body: UpstreamResponse['body'], maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let done = false;
    body.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBytes) {
        done = true;
        parts.length = 0;
        body.destroy();
        return reject(
          new GatewayError(
            'upstream_error',
            `The upstream's response is larger than the gateway's limit of ${maxBytes} bytes (UPSTREAM_MAX_BODY_BYTES).`,
            {
              status: 502,
            },
          ),
        );
      }
      parts.push(chunk);
    });
    body.once('end', () => {
      if (done) return;
      done = true;
      resolve(parts.length === 1 ? parts[0].toString('utf8') : Buffer.concat(parts, size).toString('utf8'));
    });
    body.once('error', (err) => {
      if (done) return;
      done = true;
      reject(err);
    });
  });
}

/**
 * A non-stream upstream body as JSON with the list it must carry (`choices`, `data`). OpenRouter
 * may answer 200 with an `error` instead, or something unreadable: both become a 502 to pass on.
 */
export function upstreamJson(
  text: string,
  list: 'choices' | 'data' | 'output',
): { json: any; error?: undefined } | { json?: undefined; error: UpstreamHttpError } {
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    // unreadable: answered as an upstream error below
  }
  if (json && !json.error && Array.isArray(json[list])) return { json };
  // Always a 502 (the routes record it so): the generation ran and failed late, whatever code is inside.
  const upstream = json?.error
    ? normalizeUpstreamError(200, json).error.upstream!
    : { status: 200, code: null, message: readableText(text, 200) };
  const message = json?.error ? upstream.message : 'The upstream sent an unreadable response.';
  const code = json?.error ? 'server_error' : 'upstream_error';
  // The generation ran (and was billed): the SDK must not run it again.
  return {
    error: new UpstreamHttpError(
      502,
      { error: { message, type: 'server_error', param: null, code, upstream } },
      { 'x-should-retry': 'false' },
    ),
  };
}
