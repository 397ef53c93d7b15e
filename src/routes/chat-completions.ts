import { z } from 'zod';
import { CHAT_MESSAGE_DOC, always, checkBody, field, jsonArray, optional, required } from './body-schema.js';
import { createChatStreamTap, type ChatStreamState, type ChatStreamTap } from '../proxy/chat-stream-tap.js';
import { parseUsage } from '../proxy/outcome.js';
import type { AppContext, AppDeps } from './context.js';
import { runProxy } from './proxy-pipeline.js';
import { readJsonObject } from './read-json.js';
import { setResponseHeader } from './response-headers.js';
import { THREAD_METADATA, memoryOptions, resolveThread, withoutGatewayFields } from './thread-params.js';
import { forwardedJson } from '../memory/forward-json.js';
import type { MemoryContext } from '../memory/memory-service.js';

const nonBlank = z.string().regex(/\S/);

/**
 * The fields of a chat completion request the gateway itself reads; everything else passes through
 * untouched (the body is forwarded as received, so the parsed copy is not used, and a plain object
 * schema costs a third of a loose one that copies every field: ~0.3 µs a request). `model` may be
 * left out when OpenRouter's fallback list `models` is given (it then serves the first of them
 * that is available).
 */
export const chatCompletionRequest = z
  .object({
    models: field(
      z
        .array(nonBlank)
        .min(1)
        .nullish()
        .meta({ description: "OpenRouter's fallback list: tried in order; stands in for `model` when that is left out." }),
      optional('models', 'expected a non-empty array of non-empty strings'),
    ),
    model: field(
      nonBlank.nullish().meta({ description: 'Model id, e.g. `openai/gpt-4o-mini` (required unless `models` is given).' }),
      required('model', 'expected a non-empty string'),
    ),
    messages: field(
      jsonArray({
        minItems: 1,
        items: CHAT_MESSAGE_DOC,
        description: 'The conversation so far; stored thread history is added before it (see X-Thread-Id).',
      }),
      required('messages', 'expected a non-empty array'),
    ),
    stream: field(
      z.boolean().nullish().meta({ description: 'Stream the answer as server-sent events.' }),
      optional('stream', 'expected a boolean'),
    ),
    metadata: THREAD_METADATA,
  })
  .refine((b) => (b.model !== undefined && b.model !== null) || Array.isArray(b.models), { path: ['model'], ...always })
  .meta({
    anyOf: [
      { required: ['model'], properties: { model: { type: 'string' } } },
      { required: ['models'], properties: { models: { type: 'array' } } },
    ],
  });

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
    checkBody(chatCompletionRequest, body);
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
    // With stored history injected, its messages' JSON comes from a cache (see forward-json.ts).
    const upstreamBody = forwarded === body ? raw : memory?.plan?.injectedCount ? forwardedJson(forwarded) : JSON.stringify(forwarded);
    // A thread that stores replies gets them committed before the answer ends (read-your-writes).
    const commits = !!memory && (memory.mode === 'write' || memory.mode === 'readwrite');
    const requestId = c.get('requestId');

    return runProxy<ChatStreamTap>(c, deps, {
      route: 'chat.completions',
      path: '/chat/completions',
      requestedModel,
      stream,
      upstreamBody,
      estimateBody: forwarded,
      outcomeRequest: forwarded,
      threadId,
      memory,
      listField: 'choices',
      readReply: (json) => {
        const message = json.choices.find((ch: any) => (ch?.index ?? 0) === 0)?.message ?? {};
        return {
          usage: parseUsage(json.usage),
          servedModel: typeof json.model === 'string' ? json.model : null,
          text: typeof message.content === 'string' ? message.content : '',
          toolCalls: Array.isArray(message.tool_calls) ? message.tool_calls : [],
          generationId: typeof json.id === 'string' ? json.id : null,
          finishReason: json.choices[0]?.finish_reason ?? null,
          provider: typeof json.provider === 'string' ? json.provider : null,
        };
      },
      // Read-your-writes: the exchange is in the database before the client has the answer.
      beforeSend: memory
        ? (_json, facts) =>
            deps.memory.commit(
              {
                status: 'ok',
                usage: facts.usage,
                servedModel: facts.servedModel,
                text: facts.text ?? '',
                toolCalls: facts.toolCalls ?? [],
                generationId: facts.generationId,
                requestId,
                requestedModel,
                truncatedChars: 0,
                request: forwarded,
              },
              memory,
            )
        : undefined,
      createTap: () =>
        createChatStreamTap({ includeUsage: clientWantsUsage, maxKeptChars: deps.config.memoryMaxReplyBytes, holdDone: commits }),
      beforeEnd: commits
        ? (tap) => {
            const s = tap.complete(true);
            return deps.memory.commit(
              {
                requestId,
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
      streamFacts: (tap) => {
        // The ending is read now; the reply's text and tool calls only when a consumer asks.
        const s = tap.complete(false);
        let content: ChatStreamState | null = null;
        return {
          usage: s.usage,
          servedModel: s.servedModel,
          finishReason: s.finishReason,
          generationId: s.generationId,
          provider: s.provider,
          lazyContent: () => {
            content ??= tap.complete(true);
            return { text: content.text, toolCalls: content.toolCalls.filter(Boolean), truncatedChars: content.truncatedChars };
          },
        };
      },
    });
  };
}
