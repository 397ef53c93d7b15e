import type { ClientSignal } from './client-signal.js';
import { errors as undiciErrors } from 'undici';
import { GatewayError, renderError, type ErrorCode } from '../errors.js';
import type { ChatStreamTap } from './chat-stream-tap.js';
import type { OutcomeStatus } from './outcome.js';
import type { StreamRegistry } from './stream-registry.js';
import type { UpstreamResponse } from './upstream-client.js';

export interface RelayEnd {
  status: OutcomeStatus;
  errorCode: string | null;
}

export interface RelayOptions {
  upstream: UpstreamResponse;
  tap: ChatStreamTap;
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
}

const encoder = new TextEncoder();

/**
 * Turns the upstream body into the client's stream: each upstream chunk is parsed by the tap and
 * what it yields is enqueued at once (no buffering beyond an unfinished event). Backpressure
 * pauses the upstream; a client disconnect aborts it; failures after the first byte become one
 * OpenAI-shaped error event, then the end of the stream.
 */
export function relayChatStream(opts: RelayOptions): ReadableStream<Uint8Array> {
  const { upstream, tap } = opts;
  const body = upstream.body;
  let finished = false;
  let firstByteSent = false;
  let controllerRef: ReadableStreamDefaultController<Uint8Array> | undefined;

  let unregister: (() => void) | undefined;
  const finish = (status: OutcomeStatus, errorCode: string | null = null) => {
    if (finished) return;
    finished = true;
    unregister?.();
    opts.clientSignal.removeEventListener('abort', onClientAbort);
    opts.onEnd({ status, errorCode });
  };

  const emit = (text: string) => {
    if (!text || !controllerRef) return;
    try {
      controllerRef.enqueue(encoder.encode(text));
    } catch {
      return; // the client side is already closed
    }
    if (!firstByteSent) {
      firstByteSent = true;
      opts.onFirstByte();
    }
  };

  const close = () => {
    try {
      controllerRef?.close();
    } catch {
      // already closed or cancelled
    }
  };

  const failWith = (code: ErrorCode, message: string, status: OutcomeStatus) => {
    emit(`data: ${JSON.stringify(renderError(new GatewayError(code, message)))}\n\n`);
    finish(status, code);
    close();
    body.destroy();
  };

  const onClientAbort = () => {
    if (finished) return;
    finish('client_aborted', 'client_aborted');
    opts.abortUpstream(new Error('client disconnected'));
    body.destroy();
  };

  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controllerRef = controller;
        if (opts.clientSignal.aborted) return onClientAbort();
        unregister = opts.registry?.add((reason) => {
          if (finished) return;
          failWith('service_unavailable', reason, 'aborted');
          opts.abortUpstream(new Error(reason));
        });
        opts.clientSignal.addEventListener('abort', onClientAbort, { once: true });
        body.on('data', (chunk: Buffer) => {
          if (finished) return;
          emit(tap.push(chunk));
          if (tap.state.error) {
            finish('upstream_error', tap.state.error.error.code);
            close();
            opts.abortUpstream(new Error('upstream sent an error event'));
            body.destroy();
            return;
          }
          if ((controller.desiredSize ?? 1) <= 0) body.pause();
        });
        body.on('end', () => {
          if (finished) return;
          emit(tap.end());
          if (tap.state.error) {
            finish('upstream_error', tap.state.error.error.code);
            return close();
          }
          if (!tap.state.sawDone && !tap.state.finishReason) {
            return failWith('upstream_stream_interrupted', 'The upstream stream ended before the reply was complete.', 'upstream_error');
          }
          // Some upstreams end without [DONE] after a finish_reason; clients still need it.
          if (!tap.state.sawDone) emit('data: [DONE]\n\n');
          finish('ok');
          close();
        });
        body.on('error', (err: Error) => {
          if (finished) return;
          if (opts.clientSignal.aborted) return onClientAbort();
          if (opts.timedOut() || err instanceof undiciErrors.BodyTimeoutError) {
            return failWith('upstream_timeout', 'The upstream stopped sending before the reply was complete.', 'timeout');
          }
          failWith('upstream_stream_interrupted', 'The upstream connection was lost before the reply was complete.', 'upstream_error');
        });
      },
      pull() {
        if (body.isPaused()) body.resume();
      },
      cancel() {
        onClientAbort();
      },
    },
    { highWaterMark: 16 },
  );
}
