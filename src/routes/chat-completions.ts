import { GatewayError, UpstreamHttpError } from '../errors.js';
import { createChatStreamTap, type ChatStreamState } from '../proxy/chat-stream-tap.js';
import { classifyFailure, pickUpstreamHeaders, readUpstreamBody, relayedHeaders, startForward, upstreamJson } from '../proxy/forward.js';
import { parseUsage } from '../proxy/outcome.js';
import { relayChatStream, relayChatStreamToNode, type RelayOptions } from '../proxy/relay-stream.js';
import type { AppContext, AppDeps } from './context.js';
import { admitRequest } from './admission.js';
import { outcomeEmitter } from './outcome-emitter.js';
import { clientSignalOf, readJsonObject } from './read-json.js';
import { directResponse, markSent, nodeHeaders, sendJson, setResponseHeader } from './response-headers.js';
import { memoryOptions, resolveThread, withoutGatewayFields } from './thread-params.js';
import type { MemoryContext } from '../memory/memory-service.js';

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
};

/**
 * Validates the fields the gateway itself reads; everything else passes through untouched.
 * `model` may be left out when OpenRouter's fallback list `models` is given (it then serves the
 * first of them that is available).
 */
function validateChatBody(body: Record<string, any>) {
  if (body.models !== undefined && body.models !== null) {
    const models = body.models;
    if (!Array.isArray(models) || models.length === 0 || !models.every((m) => typeof m === 'string' && m.trim())) {
      throw new GatewayError('invalid_value', "Invalid value for 'models': expected a non-empty array of non-empty strings.", { param: 'models' });
    }
  }
  if ((body.model === undefined || body.model === null) && !Array.isArray(body.models)) {
    throw new GatewayError('missing_required_parameter', "Missing required parameter: 'model'.", { param: 'model' });
  }
  if (body.model !== undefined && body.model !== null && (typeof body.model !== 'string' || !body.model.trim())) {
    throw new GatewayError('invalid_value', "Invalid value for 'model': expected a non-empty string.", { param: 'model' });
  }
  if (body.messages === undefined || body.messages === null) {
    throw new GatewayError('missing_required_parameter', "Missing required parameter: 'messages'.", { param: 'messages' });
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw new GatewayError('invalid_value', "Invalid value for 'messages': expected a non-empty array.", { param: 'messages' });
  }
  if (body.stream !== undefined && typeof body.stream !== 'boolean' && body.stream !== null) {
    throw new GatewayError('invalid_value', "Invalid value for 'stream': expected a boolean.", { param: 'stream' });
  }
}

/**
 * A shallow copy of a parsed JSON object, every own field kept (`__proto__` too, as a plain field,
 * as JSON.parse made it). Built by assignment: written as a spread literal (`{ ...body, … }`) the
 * copy had each stream request's objects promoted to old space (measured at 500 req/s: ~36 → ~24 KB
 * promoted per scavenge with assignment).
 */
function copyFields(src: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = {};
  for (const name of Object.keys(src)) {
    if (name === '__proto__') Object.defineProperty(out, name, { value: src[name], enumerable: true, writable: true, configurable: true });
    else out[name] = src[name];
  }
  return out;
}

/** `POST /v1/chat/completions`, stream and non-stream. */
export function chatCompletions(deps: AppDeps) {
  return async (c: AppContext) => {
    const { body, raw } = await readJsonObject(c, deps.config.maxBodyBytes);
    validateChatBody(body);
    const stream = body.stream === true;
    // The client asks for the usage chunk OpenAI's way or OpenRouter's (`usage: {include: true}`).
    const askedIncludeUsage = body.stream_options?.include_usage === true;
    const clientWantsUsage = stream && (askedIncludeUsage || body.usage?.include === true);
    // With only `models`, the request is recorded as asking for the first of them (OpenRouter's
    // primary); the ledger's `model` is the one actually served, read from the response.
    const requestedModel: string = body.model ?? body.models[0];
    c.get('logFields').model = requestedModel;

    // Thread memory: the gateway's own fields never go upstream; stored context comes in.
    const threadId = resolveThread(c, body);
    let forwarded = withoutGatewayFields(body);
    let memory: MemoryContext | undefined;
    if (threadId) {
      setResponseHeader(c, 'x-thread-id', threadId);
      const options = memoryOptions(c);
      const mode = deps.config.memoryEnabled ? options.mode : 'off';
      const prepared = await deps.memory.prepare({
        workspaceId: c.get('caller').workspaceId,
        threadId,
        mode,
        body: forwarded,
        maxTokens: options.maxTokens,
      });
      forwarded = prepared.body;
      memory = prepared.ctx;
      setResponseHeader(c, 'x-memory-status', memory.status);
    }

    // The gateway always asks for usage on streams; the raw body is forwarded when unchanged.
    if (stream && !askedIncludeUsage) {
      const options = forwarded.stream_options;
      forwarded = copyFields(forwarded);
      forwarded.stream_options = options && typeof options === 'object' && !Array.isArray(options) ? copyFields(options) : {};
      forwarded.stream_options.include_usage = true;
    }
    const upstreamBody = forwarded === body ? raw : JSON.stringify(forwarded);

    const t0 = c.get('startedAt');
    const clientSignal = clientSignalOf(c);
    const outcome = outcomeEmitter(c, deps, {
      route: 'chat.completions',
      requestedModel,
      stream,
      request: forwarded,
      threadId,
      memory,
    });
    await admitRequest(c, deps, outcome, forwarded);
    const handle = startForward(clientSignal, deps.config.upstreamTimeoutMs);

    let res;
    try {
      res = await deps.upstream.send({
        path: '/chat/completions',
        method: 'POST',
        body: upstreamBody,
        headers: pickUpstreamHeaders((n) => c.req.header(n), c.get('requestId')),
        signal: handle.signal,
        stream,
        onDispatch: handle.dispatched,
      });
    } catch (err) {
      handle.settle();
      const failure = classifyFailure(err, handle, clientSignal);
      const code =
        failure.error instanceof GatewayError
          ? failure.error.code
          : failure.error instanceof UpstreamHttpError
            ? failure.error.body.error.code
            : null;
      outcome({ status: failure.status, httpStatus: failure.httpStatus, errorCode: code });
      throw failure.error;
    }
    const upstreamHeadersMs = performance.now() - t0;

    if (!stream) {
      let text: string;
      try {
        text = await readUpstreamBody(res.body, deps.config.upstreamMaxBodyBytes);
      } catch (err) {
        handle.settle();
        const failure = classifyFailure(err, handle, clientSignal, true);
        const errorCode = failure.error instanceof GatewayError ? failure.error.code : null;
        outcome({ status: failure.status, httpStatus: failure.httpStatus, errorCode, upstreamHeadersMs });
        throw failure.error;
      }
      handle.settle();
      const { json, error } = upstreamJson(text, 'choices');
      if (error) {
        outcome({ status: 'upstream_error', httpStatus: 502, errorCode: error.body.error.code, upstreamHeadersMs });
        throw error;
      }
      const message = json.choices.find((ch: any) => (ch?.index ?? 0) === 0)?.message ?? {};
      const reply = {
        status: 'ok' as const,
        usage: parseUsage(json.usage),
        servedModel: typeof json.model === 'string' ? json.model : null,
        text: typeof message.content === 'string' ? message.content : '',
        toolCalls: Array.isArray(message.tool_calls) ? message.tool_calls : [],
        generationId: typeof json.id === 'string' ? json.id : null,
      };
      // Read-your-writes: the exchange is in the database before the client has the answer.
      if (memory) await deps.memory.commit({ ...reply, requestId: c.get('requestId'), requestedModel, truncatedChars: 0, request: forwarded }, memory);
      // The answer goes out first; the outcome (ledger, log) is recorded after it.
      const sent = sendJson(c, text, relayedHeaders(res));
      outcome({
        ...reply,
        httpStatus: 200,
        finishReason: json.choices[0]?.finish_reason ?? null,
        provider: typeof json.provider === 'string' ? json.provider : null,
        upstreamHeadersMs,
        firstByteMs: performance.now() - t0,
      });
      return sent;
    }

    // A thread that stores replies gets them committed before the stream's [DONE] (read-your-writes).
    const commits = !!memory && (memory.mode === 'write' || memory.mode === 'readwrite');
    const tap = createChatStreamTap({ includeUsage: clientWantsUsage, maxKeptChars: deps.config.memoryMaxReplyBytes, holdDone: commits });
    let firstByteMs: number | null = null;
    const relayOptions: RelayOptions = {
      upstream: res,
      tap,
      abortUpstream: handle.abort,
      clientSignal,
      timedOut: handle.timedOut,
      registry: deps.streams,
      beforeEnd: commits
        ? () => {
            const s = tap.complete(true);
            return deps.memory.commit(
              {
                requestId: c.get('requestId'),
                status: 'ok',
                text: s.text,
                toolCalls: s.toolCalls.filter(Boolean),
                truncatedChars: s.truncatedChars,
                servedModel: s.servedModel,
                requestedModel,
                usage: s.usage,
                generationId: s.generationId,
                request: forwarded,
              },
              memory!,
            );
          }
        : undefined,
      onFirstByte: () => {
        firstByteMs = performance.now() - t0;
      },
      onEnd: ({ status, errorCode }) => {
        handle.settle();
        // The ending is read now; the reply's text and tool calls only when a consumer asks.
        const s = tap.complete(false);
        let content: ChatStreamState | null = null;
        outcome({
          status,
          httpStatus: 200,
          errorCode,
          usage: s.usage,
          servedModel: s.servedModel,
          lazyContent: () => {
            content ??= tap.complete(true);
            return { text: content.text, toolCalls: content.toolCalls.filter(Boolean), truncatedChars: content.truncatedChars };
          },
          finishReason: s.finishReason,
          generationId: s.generationId,
          provider: s.provider,
          upstreamHeadersMs,
          firstByteMs,
        });
      },
    };
    c.set('streamed', true);
    const outgoing = directResponse(c, deps.config);
    if (outgoing) {
      // Straight to Node's socket, with the headers collected so far.
      relayChatStreamToNode(relayOptions, outgoing, nodeHeaders(c, SSE_HEADERS, relayedHeaders(res)));
      return markSent(c);
    }
    return c.body(relayChatStream(relayOptions), 200, { ...SSE_HEADERS, ...relayedHeaders(res) });
  };
}
