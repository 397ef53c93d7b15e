import type { ServerResponse } from 'node:http';
import { errors as undiciErrors } from 'undici';
import { normalizeUpstreamError, type ErrorCode } from '../errors.js';
import type { OpenAIErrorBody } from '../errors.js';
import type { ClientSignal } from './client-signal.js';
import type { OutcomeStatus } from './outcome.js';
import type { StreamRegistry } from './stream-registry.js';
import type { UpstreamResponse } from './upstream-client.js';

export interface RelayEnd {
  status: OutcomeStatus;
  errorCode: string | null;
}

/**
 * What the relay needs of a stream's protocol (chat completions' `data:` chunks and [DONE], or the
 * Responses API's named events): the tap parses upstream bytes as they pass and says what to send.
 */
export interface StreamTap {
  /** Feeds upstream bytes; returns what to send the client now (may be empty). */
  push(bytes: Uint8Array): string;
  /** The last push returned exactly the bytes that came in (the caller may forward those). */
  verbatim: boolean;
  /** Flushes what is held at the end of the upstream body. */
  end(): string;
  /** The upstream reported a failure in the stream: it is over for the client. */
  hasError(): boolean;
  errorCode(): string | null;
  /** The upstream finished a complete reply. */
  finished(): boolean;
  /** What ends the client's stream after a complete reply (`held`: the tap held its ending back for beforeEnd). */
  closing(held: boolean): string;
  /** The event(s) reporting a failure the gateway saw after the stream started. */
  failureEvent(code: string, message: string): string;
  /** A stream request answered with a JSON error body: records it as the stream's error; returns the event(s) carrying it. */
  jsonError(error: OpenAIErrorBody): string;
}

export interface RelayOptions {
  upstream: UpstreamResponse;
  tap: StreamTap;
  /** Aborts the upstream request (client gone, deadline). */
  abortUpstream: (reason: Error) => void;
  clientSignal: ClientSignal;
  /** True once the whole-request deadline fired. */
  timedOut: () => boolean;
  onFirstByte: () => void;
  /** Called exactly once, when the stream is over for whatever reason. */
  onEnd: (end: RelayEnd) => void;
  /** Where open streams are registered, so a shutdown can end them properly. */
  registry?: StreamRegistry;
  /**
   * Runs when the upstream finished a complete reply, before the client gets [DONE] and the end
   * (thread memory commits the exchange here). The tap must then hold [DONE] back (`holdDone`).
   */
  beforeEnd?: () => Promise<void>;
}

/** Where the relayed events go: a web ReadableStream, or Node's response directly. */
interface Sink {
  /** Returns false when the client is not keeping up (the upstream is then paused until drain). */
  write(data: string | Uint8Array): boolean;
  end(): void;
}

/**
 * The relay itself: each upstream chunk is parsed by the tap and what it yields is written at once
 * (no buffering beyond an unfinished event). Backpressure pauses the upstream; a client disconnect
 * aborts it; failures after the first byte become one OpenAI-shaped error event, then the end.
 */
function startRelay(opts: RelayOptions, sink: Sink) {
  const { tap } = opts;
  const body = opts.upstream.body;
  let finished = false;
  let firstByteSent = false;
  let unregister: (() => void) | undefined = undefined;

  const finish = (status: OutcomeStatus, errorCode: string | null = null) => {
    if (finished) return;
    finished = true;
    unregister?.();
    opts.clientSignal.removeEventListener('abort', onClientAbort);
    opts.onEnd({ status, errorCode });
  };

  const emit = (text: string, raw?: Uint8Array): boolean => {
    if (!text) return true;
    const ok = sink.write(raw ?? text);
    if (!firstByteSent) {
      firstByteSent = true;
      opts.onFirstByte();
    }
    return ok;
  };

  const failWith = (code: ErrorCode, message: string, status: OutcomeStatus) => {
    emit(tap.failureEvent(code, message));
    finish(status, code);
    sink.end();
    body.destroy();
  };

  function onClientAbort() {
    if (finished) return;
    finish('client_aborted', 'client_aborted');
    opts.abortUpstream(new Error('client disconnected'));
    body.destroy();
  }

  if (opts.clientSignal.aborted) {
    onClientAbort();
    return { resume: () => {}, cancel: onClientAbort };
  }
  opts.clientSignal.addEventListener('abort', onClientAbort, { once: true });
  unregister = opts.registry?.add((reason) => {
    if (finished) return;
    failWith('service_unavailable', reason, 'aborted');
    opts.abortUpstream(new Error(reason));
  });
  // A stream request answered with a JSON body (OpenRouter's 200 carrying an `error`): collected
  // and sent as the one error event, so the upstream's message reaches the client.
  const jsonParts: Buffer[] | null = /application\/json/i.test(String(opts.upstream.headers['content-type'] ?? '')) ? [] : null;
  let jsonBytes = 0;
  const endJson = (parts: Buffer[]) => {
    let json: any = null;
    try {
      json = JSON.parse(Buffer.concat(parts).toString('utf8'));
    } catch {
      // not an error body we can read: answered below
    }
    if (!json?.error) return failWith('upstream_error', 'The upstream answered a stream request without a stream.', 'upstream_error');
    const error = normalizeUpstreamError(200, json);
    emit(tap.jsonError(error));
    finish('upstream_error', error.error.code);
    sink.end();
  };
  body.on('data', (chunk: Buffer) => {
    if (finished) return;
    if (jsonParts) {
      if ((jsonBytes += chunk.length) <= 65_536) jsonParts.push(chunk);
      return;
    }
    const text = tap.push(chunk);
    // Plain events come out exactly as they went in: forward the upstream's own bytes then.
    const ok = emit(text, tap.verbatim ? chunk : undefined);
    if (tap.hasError()) {
      finish('upstream_error', tap.errorCode());
      sink.end();
      opts.abortUpstream(new Error('upstream sent an error event'));
      body.destroy();
      return;
    }
    if (!ok) body.pause();
  });
  body.on('end', () => {
    if (finished) return;
    if (jsonParts) return endJson(jsonParts);
    emit(tap.end());
    if (tap.hasError()) {
      finish('upstream_error', tap.errorCode());
      return sink.end();
    }
    if (!tap.finished()) {
      return failWith('upstream_stream_interrupted', 'The upstream stream ended before the reply was complete.', 'upstream_error');
    }
    const close = () => {
      if (finished) return; // the client left, or a shutdown ended the stream, meanwhile
      emit(tap.closing(!!opts.beforeEnd));
      // The client's stream ends first; the outcome (ledger, log, memory) is recorded after it.
      sink.end();
      finish('ok');
    };
    if (opts.beforeEnd) opts.beforeEnd().then(close, close);
    else close();
  });
  body.on('error', (err: Error) => {
    if (finished) return;
    if (opts.clientSignal.aborted) return onClientAbort();
    if (opts.timedOut() || err instanceof undiciErrors.BodyTimeoutError) {
      return failWith('upstream_timeout', 'The upstream stopped sending before the reply was complete.', 'timeout');
    }
    failWith('upstream_stream_interrupted', 'The upstream connection was lost before the reply was complete.', 'upstream_error');
  });
  return {
    resume: () => {
      if (body.isPaused()) body.resume();
    },
    cancel: onClientAbort,
  };
}

const encoder = new TextEncoder();

/** The relay as a web ReadableStream (Hono's portable path; used when not served by Node). */
export function relayChatStream(opts: RelayOptions): ReadableStream<Uint8Array> {
  let relay: ReturnType<typeof startRelay> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        relay = startRelay(opts, {
          write(data) {
            try {
              controller.enqueue(typeof data === 'string' ? encoder.encode(data) : data);
            } catch {
              return true; // the client side is already closed
            }
            return (controller.desiredSize ?? 1) > 0;
          },
          end() {
            try {
              controller.close();
            } catch {
              // already closed or cancelled
            }
          },
        });
      },
      pull() {
        relay?.resume();
      },
      cancel() {
        relay?.cancel();
      },
    },
    { highWaterMark: 16 },
  );
}

/**
 * The relay written straight to Node's response: no web streams between the upstream socket and
 * the client's (they cost a large share of the CPU per streamed request).
 */
export function relayChatStreamToNode(opts: RelayOptions, res: ServerResponse, headers: Record<string, string>): void {
  res.writeHead(200, headers);
  res.flushHeaders();
  const relay = startRelay(opts, {
    write: (data) => (res.writableEnded || res.destroyed ? true : res.write(data)),
    end: () => {
      if (!res.writableEnded) res.end();
    },
  });
  res.on('drain', relay.resume);
}
