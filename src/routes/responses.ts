import { createHash } from 'node:crypto';
import { Hono } from 'hono';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { checkBody, field, invalid, optional } from './body-schema.js';
import { parseResponsesUsage } from '../proxy/outcome.js';
import { createResponsesStreamTap, type ResponsesStreamTap } from '../proxy/responses-stream-tap.js';
import { chatMessagesOf, inputItems, itemTokens, overlapWithHistory, presentItem, type ResponseItem } from '../responses/items.js';
import type { ResponseStore, StoredResponse } from '../responses/response-store.js';
import type { AppContext, AppDeps, AppEnv } from './context.js';
import { runProxy } from './proxy-pipeline.js';
import { readJsonObject } from './read-json.js';
import { itemListPage } from './item-list.js';
import { setResponseHeader } from './response-headers.js';
import { tokenFactor } from '../memory/context-plan.js';
import { countTextTokens } from '../tokens/count-tokens.js';
import { THREAD_ID, THREAD_METADATA, memoryOptions, resolveThread, threadIdSchema, withoutGatewayFields } from './thread-params.js';
import { recordRejections } from '../middleware/record-rejections.js';

/** Fields the gateway resolves itself: never sent to the (stateless) upstream. */
const STATE_FIELDS = ['previous_response_id', 'conversation', 'store'];

const isItem = (item: unknown) => !!item && typeof item === 'object' && !Array.isArray(item);

/** An input item, as documented: the gateway reads only that it is an object. */
export const inputItem = z
  .object({})
  .meta({ description: 'An input item: a message `{role, content}` or `{type, …}` (function_call_output, item_reference, …).' });

/** The error of the first element of `items` that is not an item (named `input[i]`, as on POST /v1/responses). */
export const badItem = (items: unknown[]) => {
  const at = items.findIndex((item) => !isItem(item));
  return invalid(`input[${at}]`, 'expected an object', `input[${at}]`);
};
const conversationError = () => invalid('conversation', 'expected a conversation id or {"id": …}');

/**
 * The fields of a Responses API request the gateway reads (the state it keeps, and what it needs to
 * rebuild a chain); every other field passes through to the upstream untouched.
 */
export const responseRequest = z.object({
  model: field(z.string().regex(/\S/).meta({ description: 'Model id, e.g. `openai/gpt-4o-mini`.' }), (v) => [
    v === undefined || v === null ? 'missing_required_parameter' : 'invalid_value',
    "Missing required parameter: 'model'.",
  ]),
  stream: field(
    z.boolean().nullish().meta({ description: 'Stream the answer as server-sent events (`event:` and `data:` lines).' }),
    optional('stream', 'expected a boolean'),
  ),
  store: field(
    z
      .boolean()
      .nullish()
      .meta({ description: 'Keep the response (default true) for GET /v1/responses/{id}, input_items and `previous_response_id`.' }),
    optional('store', 'expected a boolean'),
  ),
  previous_response_id: field(
    z
      .string()
      .min(1)
      .nullish()
      .meta({ description: 'Continue from a stored response: the gateway rebuilds the whole chain for the stateless upstream.' }),
    optional('previous_response_id', 'expected a response id'),
  ),
  truncation: field(
    z
      .enum(['auto', 'disabled'])
      .nullish()
      .meta({ description: 'A rebuilt input that does not fit the context window: drop the oldest items (`auto`) or fail (`disabled`).' }),
    () => ['invalid_value', "Invalid value for 'truncation': expected 'auto' or 'disabled'."],
  ),
  input: field(
    z
      .union([z.string(), z.array(inputItem)])
      .nullish()
      .meta({ description: 'A string (one user message) or a list of input items.' }),
    (v) => (Array.isArray(v) ? badItem(v) : invalid('input', 'expected a string or an array of items')),
  ),
  conversation: field(
    z
      .union([threadIdSchema, z.object({ id: threadIdSchema })])
      .nullish()
      .meta({ description: 'A conversation (`conv_…`, or any thread id): the turn is read from it and appended to it.' }),
    conversationError,
  ),
  metadata: THREAD_METADATA,
});

/**
 * The history a rebuilt input carries, fitted to the model's context window: what does not fit is
 * left out oldest first (a tool result never starts it without its call), unless the client asked
 * for `truncation: "disabled"`, which gets OpenAI's error instead. Unknown window: all of it.
 */
async function fitHistory(
  deps: AppDeps,
  body: Record<string, any>,
  history: { tokens: number; item: ResponseItem }[],
  input: ResponseItem[],
): Promise<ResponseItem[]> {
  if (history.length === 0) return [];
  if (!deps.catalog.isLoaded()) await deps.catalog.get().catch(() => undefined);
  const model = deps.catalog.peek(String(body.model));
  const window = model?.contextLength;
  if (!window) return history.map((h) => h.item);
  // Other models tokenize differently: counted with chat memory's margin, so the estimate never falls short.
  const factor = tokenFactor(model.id);
  const requested = Number(body.max_output_tokens);
  const reserve =
    Number.isFinite(requested) && requested > 0 ? requested : Math.min(model.maxCompletionTokens ?? 1_024, Math.floor(window / 4));
  const margin = Math.ceil(window * 0.05) + 64;
  const fixed = Math.ceil(
    (itemTokens(input) +
      (typeof body.instructions === 'string' ? countTextTokens(body.instructions) : 0) +
      (body.tools ? countTextTokens(JSON.stringify(body.tools)) : 0)) *
      factor,
  );
  const room = window - reserve - margin - fixed;
  const cost = (h: { tokens: number }) => Math.ceil(h.tokens * factor);
  let total = history.reduce((n, h) => n + cost(h), 0);
  if (total <= room) return history.map((h) => h.item);
  if (body.truncation === 'disabled') {
    throw new GatewayError(
      'context_length_exceeded',
      `The conversation (about ${total + fixed} tokens with this input) exceeds the context window of ${model.id} (${window} tokens). Use truncation: "auto" to drop the oldest items.`,
      { param: 'input' },
    );
  }
  let start = 0;
  while (start < history.length && total > room) total -= cost(history[start++]);
  // A tool result or reasoning left without what preceded it would be refused: start at a message or call.
  while (start < history.length && (history[start].item.type === 'function_call_output' || history[start].item.type === 'reasoning'))
    start++;
  return history.slice(start).map((h) => h.item);
}

/** `conversation` (already checked): an id, or `{id}`. */
const conversationParam = (value: unknown): string | null =>
  typeof value === 'string' ? value : ((value as { id?: string } | null | undefined)?.id ?? null);

/** The finished response's output items (the terminal event's, or the body's). */
const outputOf = (response: any): ResponseItem[] => (Array.isArray(response?.output) ? response.output : []);

/** `POST /v1/responses` and the stored-response routes. */
export function responsesRoutes(deps: AppDeps, store: ResponseStore) {
  const api = new Hono<AppEnv>();
  const ws = (c: AppContext) => c.get('caller').workspaceId;

  api.post('/', recordRejections(deps, 'responses'), async (c) => {
    const { body } = await readJsonObject(c, deps.config.maxBodyBytes);
    checkBody(responseRequest, body);
    const stream = body.stream === true;
    // `store: false` keeps no response (neither retrievable nor chainable); a conversation or a thread still gets the turn.
    const retrievable = body.store !== false;
    const requestedModel: string = body.model;
    c.get('logFields').model = requestedModel;
    const given = body.input === undefined || body.input === null ? [] : inputItems(body.input);
    const newInput = await store.resolveReferences(ws(c), given);

    // State the upstream cannot keep: the chain before this call, or the conversation (a thread:
    // `conversation`, X-Thread-Id, metadata.thread_id or /t/{id}/v1), rebuilt from the store.
    const previousId: string | null = body.previous_response_id ?? null;
    const conversationId = conversationParam(body.conversation);
    const named = resolveThread(c, body);
    if (conversationId && named && named !== conversationId) {
      throw new GatewayError('invalid_value', `The request names two threads: conversation '${conversationId}' and thread '${named}'.`, {
        param: 'conversation',
      });
    }
    const mode = conversationId ? 'readwrite' : named ? (deps.config.memoryEnabled ? memoryOptions(c).mode : 'off') : 'off';
    const threadOf = conversationId ?? (mode === 'off' ? null : named);
    let previous: StoredResponse | undefined;
    let history: ResponseItem[] = [];
    let toStore = newInput;
    if (previousId) {
      if (threadOf)
        throw new GatewayError('invalid_value', "'previous_response_id' and 'conversation' cannot be used together.", {
          param: 'conversation',
        });
      previous = await store.get(ws(c), previousId);
      if (!previous)
        throw new GatewayError('previous_response_not_found', `Previous response with id '${previousId}' not found.`, {
          param: 'previous_response_id',
        });
      history = await fitHistory(deps, body, await store.chainItems(ws(c), previousId), newInput);
    } else if (threadOf) {
      if (conversationId && !(await deps.threads.getThread(ws(c), conversationId))) {
        throw new GatewayError('not_found', `Conversation with id '${conversationId}' not found.`, { param: 'conversation' });
      }
      const stored = mode === 'write' ? [] : await store.threadHistory(ws(c), threadOf);
      // A client re-sending (part of) what the thread holds: those items count once, in the client's own form.
      const overlap = overlapWithHistory(
        stored.map((h) => h.item),
        newInput,
      );
      toStore = newInput.slice(overlap);
      history = await fitHistory(deps, body, stored.slice(0, stored.length - overlap), newInput);
    }
    const forwarded: Record<string, any> = {};
    for (const [k, v] of Object.entries(withoutGatewayFields(body))) if (!STATE_FIELDS.includes(k)) forwarded[k] = v;
    if (history.length || newInput !== given) forwarded.input = [...history, ...newInput];
    const threadId = previous?.threadId ?? threadOf;
    if (threadId) setResponseHeader(c, 'x-thread-id', threadId);
    const writes = !threadOf || mode === 'write' || mode === 'readwrite';
    const keep = retrievable || !!threadOf;
    const estimateBody = {
      model: requestedModel,
      messages: chatMessagesOf([...history, ...newInput], body.instructions),
      max_tokens: body.max_output_tokens,
      tools: body.tools,
    };

    /** Stores a finished response (completed or incomplete) before the client has its end. */
    const save = async (response: Record<string, any>) => {
      if (!keep || !writes || typeof response?.id !== 'string') return;
      await store.save({
        workspaceId: ws(c),
        threadId:
          threadId ??
          (THREAD_ID.test(response.id) ? response.id : `resp_${createHash('sha256').update(response.id).digest('hex').slice(0, 32)}`),
        response: {
          ...response,
          previous_response_id: previousId,
          store: true,
          ...(conversationId ? { conversation: { id: conversationId } } : {}),
        },
        input: toStore,
        output: outputOf(response),
        previousResponseId: previousId,
        conversationId,
        retrievable,
        requestId: c.get('requestId'),
      });
    };

    return runProxy<ResponsesStreamTap>(c, deps, {
      route: 'responses',
      path: '/responses',
      requestedModel,
      stream,
      upstreamBody: JSON.stringify(forwarded),
      estimateBody,
      outcomeRequest: estimateBody,
      threadId,
      listField: 'output',
      readReply: (json) => ({
        usage: parseResponsesUsage(json.usage),
        servedModel: typeof json.model === 'string' ? json.model : null,
        generationId: typeof json.id === 'string' ? json.id : null,
        finishReason: typeof json.status === 'string' ? json.status : null,
        text: outputText(json),
      }),
      beforeSend: (json) => (json.status === 'completed' || json.status === 'incomplete' ? save(json) : Promise.resolve()),
      createTap: () => createResponsesStreamTap({ maxKeptChars: deps.config.memoryMaxReplyBytes, holdFinal: keep }),
      beforeEnd: keep ? (tap) => save(tap.state.response!) : undefined,
      streamFacts: (tap) => {
        const s = tap.state;
        return {
          usage: s.usage,
          servedModel: typeof s.response?.model === 'string' ? s.response.model : null,
          generationId: typeof s.response?.id === 'string' ? s.response.id : null,
          finishReason: s.status,
          lazyContent: () => {
            const done = s.status ? { text: outputText(s.response), truncatedChars: 0 } : tap.completeText();
            return { text: done.text, toolCalls: [], truncatedChars: done.truncatedChars };
          },
        };
      },
    });
  });

  const stored = async (c: AppContext) => {
    const row = await store.get(ws(c), c.req.param('id')!);
    if (!row) throw new GatewayError('not_found', `Response with id '${c.req.param('id')}' not found.`, { param: 'response_id' });
    return row;
  };

  api.get('/:id', async (c) => {
    const row = await stored(c);
    return c.body(row.body, 200, { 'content-type': 'application/json' });
  });

  api.delete('/:id', async (c) => {
    const row = await stored(c);
    await store.delete(ws(c), row);
    return c.json({ id: row.id, object: 'response', deleted: true });
  });

  /** The response's own input items, paginated as OpenAI's list (`limit` 1-100, `order`, `after`, `before`). */
  api.get('/:id/input_items', async (c) => {
    const row = await stored(c);
    const items = (await store.inputItems(ws(c), row)).map(({ id, item }) => presentItem(id, item));
    return c.json(itemListPage(c, items, 'response', ['after', 'before']));
  });

  return api;
}

/** The text of a response's output_text parts, joined (what the SDKs call `output_text`). */
function outputText(response: any): string {
  let text = '';
  for (const item of outputOf(response)) {
    if (item?.type !== 'message' || !Array.isArray(item.content)) continue;
    for (const part of item.content) if (part?.type === 'output_text' && typeof part.text === 'string') text += part.text;
  }
  return text;
}
