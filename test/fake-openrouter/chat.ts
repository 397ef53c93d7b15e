// POST /api/v1/chat/completions: normal replies plus the failure modes selected by `body.fake`.

import { setTimeout as sleep } from 'node:timers/promises';
import {
  argPiecesOf,
  controlOf,
  expectedUsage,
  generationId,
  piecesOf,
  promptTokensOf,
  replyFor,
  toolCallFor,
  type FakeControl,
} from './behaviour.js';
import { findModel } from './catalog.js';
import { dropConnection, sendError, sendJson, sendJsonFragmented, sendJsonThenDrop, SseWriter } from './io.js';
import type { Exchange } from './types.js';

export const PROVIDER = 'FakeProvider';
/** Modes that stream only the first `chunks` content chunks and then misbehave. */
export const PARTIAL_MODES = new Set(['stall', 'drop', 'drop_after_headers', 'midstream_error']);

export interface Gen {
  id: string;
  created: number;
  model: string;
}

function chunk(g: Gen, delta: object, finish: string | null = null) {
  return {
    id: g.id,
    provider: PROVIDER,
    model: g.model,
    object: 'chat.completion.chunk',
    created: g.created,
    choices: [
      {
        index: 0,
        delta,
        finish_reason: finish,
        native_finish_reason: finish,
        logprobs: null,
      },
    ],
  };
}

/**
 * The three usage-chunk shapes seen from OpenRouter (see PROTOCOL.md); clients must handle all.
 * `empty` is an ordinary chunk with one empty choice, which the default shape keeps.
 */
export function usageChunk(empty: { choices: unknown[] }, usage: object, shape: FakeControl['usageShape']) {
  const { choices, ...rest } = empty;
  if (shape === 'empty_choices') return { ...rest, choices: [], usage };
  if (shape === 'no_choices') return { ...rest, usage };
  return { ...rest, choices, usage };
}

function upstreamError(x: Exchange, status: number, retryAfter?: string): void {
  // Providers' 429s usually carry Retry-After; default it so retry logic is exercised.
  const ra = retryAfter ?? (status === 429 ? '7' : undefined);
  sendJson(
    x.res,
    status,
    {
      error: {
        code: status,
        message: `Fake upstream error ${status}`,
        metadata: { provider_name: PROVIDER },
      },
      user_id: 'user_fake',
    },
    ra === undefined ? {} : { 'Retry-After': ra },
  );
}

/** A 200 whose body is an error instead of choices: OpenRouter does this when a provider fails late. */
export function error200(x: Exchange, g: Gen, object = 'chat.completion'): void {
  sendJson(
    x.res,
    200,
    {
      id: g.id,
      provider: PROVIDER,
      model: g.model,
      object,
      created: g.created,
      error: {
        code: 502,
        message: 'Provider returned error',
        metadata: { provider_name: PROVIDER },
      },
      user_id: 'user_fake',
    },
    { 'X-Generation-Id': g.id },
  );
}

export async function handleChat(x: Exchange, failCounts: Map<string, number>): Promise<void> {
  const body = x.body;
  if (!body || typeof body !== 'object') return sendError(x.res, 400, 'Request body must be a JSON object');
  // `model` first, then the `models` fallback list, skipping the ones the test marked as down.
  const candidates = [body.model, ...(Array.isArray(body.models) ? body.models : [])].filter((m): m is string => typeof m === 'string');
  const down = controlOf(body).unavailable ?? [];
  const modelId = candidates.find((m) => !down.includes(m)) ?? candidates[0];
  if (typeof modelId !== 'string') return sendError(x.res, 400, 'No model provided');
  if (down.includes(modelId)) return upstreamError(x, 503);
  if (!findModel(modelId)) return sendError(x.res, 400, `${modelId} is not a valid model ID`);
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return sendError(x.res, 400, 'Input required: specify "prompt" or "messages"');
  }
  // Like OpenRouter: a prompt plus requested output beyond the model's window is a 400.
  const window = findModel(modelId)!.context_length;
  const requested = promptTokensOf(body) + Number(body.max_completion_tokens ?? body.max_tokens ?? 0);
  if (requested > window) {
    return sendError(
      x.res,
      400,
      `This endpoint's maximum context length is ${window} tokens. However, you requested about ${requested} tokens.`,
    );
  }

  const fake = controlOf(body);
  if (answeredUpFront(x, fake, failCounts)) return;

  const created = Math.floor(Date.now() / 1000);
  const g: Gen = { id: generationId(created), created, model: modelId };
  if (fake.mode === 'nonstream_error_200') return error200(x, g);
  return body.stream === true ? stream(x, g, fake) : nonStream(x, g, fake);
}

/**
 * The modes that fail before any generation (`error`, `fail_then_ok` while failing, `hang`), shared by
 * every generating route. True when the request is dealt with and the route must not answer.
 */
export function answeredUpFront(x: Exchange, fake: FakeControl, failCounts: Map<string, number>): boolean {
  const mode = fake.mode ?? 'default';
  if (mode === 'error') {
    upstreamError(x, fake.status ?? 500, fake.retryAfter);
    return true;
  }
  if (mode === 'fail_then_ok') {
    const key = fake.key ?? '';
    const seen = failCounts.get(key) ?? 0;
    failCounts.set(key, seen + 1);
    if (seen < (fake.failTimes ?? 2)) {
      upstreamError(x, fake.status ?? 502, fake.retryAfter);
      return true;
    }
  }
  return mode === 'hang'; // body already read; never answer
}

async function nonStream(x: Exchange, g: Gen, fake: FakeControl): Promise<void> {
  const mode = fake.mode ?? 'default';
  if (mode === 'stall') return; // nothing to stall in a JSON body: behave like hang
  if (mode === 'drop') return dropConnection(x);
  if (mode === 'midstream_error') return error200(x, g);
  const delay = fake.delayMs ?? (mode === 'slow' ? 200 : 0);
  if (delay > 0) await sleep(delay, undefined, { signal: x.signal });

  let message: object;
  let finish = 'stop';
  if (mode === 'tool_calls') {
    const call = toolCallFor(x.body);
    message = {
      role: 'assistant',
      content: null,
      refusal: null,
      reasoning: null,
      tool_calls: [
        {
          id: call.id,
          type: 'function',
          function: { name: call.name, arguments: call.arguments },
        },
      ],
    };
    finish = 'tool_calls';
  } else {
    message = {
      role: 'assistant',
      content: replyFor(x.body),
      refusal: null,
      reasoning: null,
    };
  }
  const payload = {
    id: g.id,
    provider: PROVIDER,
    model: g.model,
    object: 'chat.completion',
    created: g.created,
    choices: [
      {
        logprobs: null,
        finish_reason: finish,
        native_finish_reason: finish,
        index: 0,
        message,
      },
    ],
    usage: expectedUsage(x.body),
  };
  const headers = { 'X-Generation-Id': g.id };
  if (mode === 'drop_after_headers') return sendJsonThenDrop(x, payload, headers);
  if (mode === 'utf8_split') return sendJsonFragmented(x, payload, headers);
  sendJson(x.res, 200, payload, headers);
}

async function stream(x: Exchange, g: Gen, fake: FakeControl): Promise<void> {
  const mode = fake.mode ?? 'default';
  const delay = fake.delayMs ?? (mode === 'slow' ? 200 : 0);
  const w = new SseWriter(x, { 'X-Generation-Id': g.id }, delay, mode === 'utf8_split');
  const role = 'assistant';
  w.start();
  await w.comment();
  // OpenRouter typically opens with a couple of empty-content chunks.
  await w.event(chunk(g, { role, content: '' }));
  await w.event(chunk(g, { role, content: '' }));
  await w.comment();

  let finish = 'stop';
  if (mode === 'tool_calls') {
    const call = toolCallFor(x.body);
    const fn = { name: call.name, arguments: '' };
    await w.event(
      chunk(g, {
        role,
        tool_calls: [{ index: 0, id: call.id, type: 'function', function: fn }],
      }),
    );
    for (const piece of argPiecesOf(call.arguments)) {
      await w.event(
        chunk(g, {
          role,
          tool_calls: [{ index: 0, function: { arguments: piece } }],
        }),
      );
    }
    finish = 'tool_calls';
  } else {
    let pieces = piecesOf(replyFor(x.body));
    if (PARTIAL_MODES.has(mode)) pieces = pieces.slice(0, fake.chunks ?? 2);
    for (const piece of pieces) await w.event(chunk(g, { role, content: piece }));

    if (mode === 'stall') return; // socket stays open until the client or close() ends it
    if (mode === 'drop') {
      await sleep(20, undefined, { signal: x.signal }); // let written chunks leave before the reset
      return dropConnection(x);
    }
    if (mode === 'midstream_error') {
      // HTTP status is already 200, so the failure travels as an event; no [DONE] follows.
      const { choices: _, ...head } = chunk(g, {});
      await w.event({
        ...head,
        error: {
          code: fake.errorCode ?? 502,
          message: 'Provider returned error',
        },
        choices: [
          {
            index: 0,
            delta: { content: '' },
            finish_reason: 'error',
            native_finish_reason: 'error',
          },
        ],
      });
      return w.end();
    }
  }

  await w.comment();
  await w.event(chunk(g, { role, content: '' }, finish));
  // Usage arrives after the finish chunk regardless of stream_options.include_usage.
  await w.event(usageChunk(chunk(g, { role, content: '' }), expectedUsage(x.body), fake.usageShape));
  await w.event('[DONE]');
  w.end();
}
