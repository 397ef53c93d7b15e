import { GatewayError, UpstreamHttpError } from '../errors.js';
import { classifyFailure, pickUpstreamHeaders, readUpstreamBody, relayedHeaders, startForward, upstreamJson } from '../proxy/forward.js';
import type { RequestOutcome, ToolCall, Usage } from '../proxy/outcome.js';
import { relayChatStream, relayChatStreamToNode, type StreamTap } from '../proxy/relay-stream.js';
import type { MemoryContext } from '../memory/memory-service.js';
import type { AppContext, AppDeps } from './context.js';
import { admitRequest } from './admission.js';
import { outcomeEmitter, type OutcomePart } from './outcome-emitter.js';
import { clientSignalOf } from './read-json.js';
import { directResponse, markSent, nodeHeaders, sendJson } from './response-headers.js';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
};

/** What a finished reply says, for the ledger and the log. */
export interface ReplyFacts {
  usage: Usage | null;
  servedModel: string | null;
  generationId: string | null;
  finishReason?: string | null;
  provider?: string | null;
  text?: string;
  toolCalls?: ToolCall[];
}

/**
 * What a proxied route says about itself; the pipeline does the rest, the same for every route:
 * admission (limits, budget), the upstream call with its deadline and client-abort, failures
 * classified and answered OpenAI's way, the non-stream body read (bounded) or the stream relayed
 * (no buffering), and exactly one outcome (ledger, log, metrics).
 */
export interface ProxySpec<Tap extends StreamTap = StreamTap> {
  route: RequestOutcome['route'];
  /** The upstream path (`/responses`, `/completions`, …). */
  path: string;
  requestedModel: string;
  stream: boolean;
  /** The body sent upstream, serialized. */
  upstreamBody: string | Buffer;
  /** What admission estimates tokens and cost from (chat-shaped: `messages`, `max_tokens`; or `input`). */
  estimateBody: Record<string, unknown>;
  /** The request as the outcome keeps it (estimates of a stream cut short read `messages`). */
  outcomeRequest: Record<string, unknown> | null;
  threadId?: string | null;
  /** Thread memory of the request (chat), handed to the outcome's consumers. */
  memory?: MemoryContext;
  /** Non-stream: the list a good upstream body carries (`choices`, `data`, `output`). */
  listField: 'choices' | 'data' | 'output';
  /** Non-stream: the facts of the upstream's good body. */
  readReply(json: any): ReplyFacts;
  /** Non-stream: runs before the answer is sent (state the next call must see is stored here). */
  beforeSend?(json: any, facts: ReplyFacts): Promise<void>;
  /** Stream: the tap that parses this protocol's events as they pass. */
  createTap?(): Tap;
  /** Stream: runs when the upstream finished a complete reply, before the client gets the end. */
  beforeEnd?(tap: Tap): Promise<void>;
  /** Stream: the facts of the stream when it is over (complete or not). */
  streamFacts?(tap: Tap): ReplyFacts & Pick<OutcomePart, 'lazyContent'>;
}

/** Runs a proxied request through the shared pipeline and answers it. */
export async function runProxy<Tap extends StreamTap>(c: AppContext, deps: AppDeps, spec: ProxySpec<Tap>): Promise<Response> {
  const t0 = c.get('startedAt');
  const clientSignal = clientSignalOf(c);
  const outcome = outcomeEmitter(c, deps, {
    route: spec.route,
    requestedModel: spec.requestedModel,
    stream: spec.stream,
    request: spec.outcomeRequest,
    threadId: spec.threadId ?? null,
    memory: spec.memory,
  });
  await admitRequest(c, deps, outcome, spec.estimateBody);
  const handle = startForward(clientSignal, deps.config.upstreamTimeoutMs);

  let res;
  try {
    res = await deps.upstream.send({
      path: spec.path,
      method: 'POST',
      body: spec.upstreamBody,
      headers: pickUpstreamHeaders((n) => c.req.header(n), c.get('requestId')),
      signal: handle.signal,
      stream: spec.stream,
      onDispatch: handle.dispatched,
    });
  } catch (err) {
    handle.settle();
    const failure = classifyFailure(err, handle, clientSignal);
    outcome({ status: failure.status, httpStatus: failure.httpStatus, errorCode: errorCodeOf(failure.error) });
    throw failure.error;
  }
  const upstreamHeadersMs = performance.now() - t0;

  if (!spec.stream) {
    let text: string;
    try {
      text = await readUpstreamBody(res.body, deps.config.upstreamMaxBodyBytes);
    } catch (err) {
      handle.settle();
      const failure = classifyFailure(err, handle, clientSignal, true);
      outcome({ status: failure.status, httpStatus: failure.httpStatus, errorCode: errorCodeOf(failure.error), upstreamHeadersMs });
      throw failure.error;
    }
    handle.settle();
    const { json, error } = upstreamJson(text, spec.listField);
    if (error) {
      outcome({ status: 'upstream_error', httpStatus: 502, errorCode: error.body.error.code, upstreamHeadersMs });
      throw error;
    }
    const facts = spec.readReply(json);
    if (spec.beforeSend) {
      try {
        await spec.beforeSend(json, facts);
      } catch (err) {
        // The reply exists and was billed: recorded as such, and the client is told not to retry it.
        outcome({ status: 'upstream_error', httpStatus: 503, errorCode: 'service_unavailable', ...facts, upstreamHeadersMs });
        deps.logger.warn({ request_id: c.get('requestId'), err: (err as Error).message }, 'storing the response failed');
        throw new GatewayError('service_unavailable', 'The response could not be stored; retry shortly.', {
          headers: { 'retry-after': '2', 'x-should-retry': 'false' },
          cause: err,
        });
      }
    }
    // The answer goes out first; the outcome (ledger, log) is recorded after it.
    const sent = sendJson(c, text, relayedHeaders(res));
    outcome({ status: 'ok', httpStatus: 200, ...facts, upstreamHeadersMs, firstByteMs: performance.now() - t0 });
    return sent;
  }

  const tap = spec.createTap!();
  let firstByteMs: number | null = null;
  const relayOptions = {
    upstream: res,
    tap,
    abortUpstream: handle.abort,
    clientSignal,
    timedOut: handle.timedOut,
    registry: deps.streams,
    beforeEnd: spec.beforeEnd ? () => spec.beforeEnd!(tap) : undefined,
    onFirstByte: () => {
      firstByteMs = performance.now() - t0;
    },
    onEnd: ({ status, errorCode }: { status: RequestOutcome['status']; errorCode: string | null }) => {
      handle.settle();
      outcome({ status, httpStatus: 200, errorCode, ...spec.streamFacts!(tap), upstreamHeadersMs, firstByteMs });
    },
  };
  c.set('streamed', true);
  const outgoing = directResponse(c, deps.config);
  if (outgoing) {
    relayChatStreamToNode(relayOptions, outgoing, nodeHeaders(c, SSE_HEADERS, relayedHeaders(res)));
    return markSent(c);
  }
  return c.body(relayChatStream(relayOptions), 200, { ...SSE_HEADERS, ...relayedHeaders(res) });
}

function errorCodeOf(error: Error): string | null {
  return error instanceof GatewayError ? error.code : error instanceof UpstreamHttpError ? error.body.error.code : null;
}
