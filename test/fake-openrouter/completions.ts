// POST /api/v1/completions: legacy text completions, which OpenRouter still serves, in chat's shape
// (`provider`, `native_finish_reason`, usage with cost) and with chat's failure modes (see chat.ts).

import { setTimeout as sleep } from 'node:timers/promises';
import { controlOf, generationId, piecesOf, replyFor, usageOf, type FakeControl, type FakeUsage } from './behaviour.js';
import { findModel } from './catalog.js';
import { answeredUpFront, error200, PARTIAL_MODES, PROVIDER, usageChunk, type Gen } from './chat.js';
import { dropConnection, sendError, sendJson, sendJsonFragmented, sendJsonThenDrop, SseWriter } from './io.js';
import type { Exchange } from './types.js';

/** `prompt` as a list: a string is one prompt; an array of strings asks for one choice per prompt. */
function promptsOf(body: any): string[] {
  const prompt = body?.prompt;
  if (typeof prompt === 'string') return [prompt];
  return Array.isArray(prompt) && prompt.every((p) => typeof p === 'string') ? prompt : [];
}

/** The full completion of one prompt: chat's reply to it as the only user message. */
export function completionReplyFor(body: any, prompt: string): string {
  return replyFor({ fake: body?.fake, messages: [{ role: 'user', content: prompt }] });
}

interface Choice {
  /** One token each, cut at max_tokens. */
  pieces: string[];
  finish: 'stop' | 'length';
}

function choicesFor(body: any): Choice[] {
  const max = typeof body?.max_tokens === 'number' ? body.max_tokens : Infinity;
  return promptsOf(body).map((prompt) => {
    const all = piecesOf(completionReplyFor(body, prompt));
    return { pieces: all.slice(0, max), finish: all.length > max ? 'length' : 'stop' };
  });
}

/** ceil(chars / 4) per prompt, at least 1, as embeddings count their inputs. */
export function completionPromptTokensOf(body: any): number {
  return promptsOf(body).reduce((n, p) => n + Math.max(1, Math.ceil(p.length / 4)), 0);
}

/** The exact `usage` the fake reports for a successful completions request with this body. */
export function expectedCompletionsUsage(body: any): FakeUsage {
  const completion = choicesFor(body).reduce((n, c) => n + c.pieces.length, 0);
  return usageOf(completionPromptTokensOf(body), completion, controlOf(body));
}

function chunk(g: Gen, index: number, text: string, finish: string | null = null) {
  return {
    id: g.id,
    provider: PROVIDER,
    model: g.model,
    object: 'text_completion',
    created: g.created,
    choices: [{ index, text, finish_reason: finish, native_finish_reason: finish, logprobs: null }],
  };
}

export async function handleCompletions(x: Exchange, failCounts: Map<string, number>): Promise<void> {
  const body = x.body;
  if (!body || typeof body !== 'object') return sendError(x.res, 400, 'Request body must be a JSON object');
  if (typeof body.model !== 'string') return sendError(x.res, 400, 'No model provided');
  const model = findModel(body.model);
  if (!model) return sendError(x.res, 400, `${body.model} is not a valid model ID`);
  if (promptsOf(body).length === 0) return sendError(x.res, 400, 'prompt must be a string or an array of strings');
  // As on chat: the prompt plus the requested output beyond the model's window is a 400.
  const requested = completionPromptTokensOf(body) + Number(body.max_tokens ?? 0);
  if (requested > model.context_length) {
    return sendError(
      x.res,
      400,
      `This endpoint's maximum context length is ${model.context_length} tokens. However, you requested about ${requested} tokens.`,
    );
  }

  const fake = controlOf(body);
  if (answeredUpFront(x, fake, failCounts)) return;
  const created = Math.floor(Date.now() / 1000);
  const g: Gen = { id: generationId(created), created, model: model.id };
  if (fake.mode === 'nonstream_error_200') return error200(x, g, 'text_completion');
  return body.stream === true ? stream(x, g, fake) : nonStream(x, g, fake);
}

async function nonStream(x: Exchange, g: Gen, fake: FakeControl): Promise<void> {
  const mode = fake.mode ?? 'default';
  if (mode === 'stall') return; // nothing to stall in a JSON body: behave like hang
  if (mode === 'drop') return dropConnection(x);
  if (mode === 'midstream_error') return error200(x, g, 'text_completion');
  const delay = fake.delayMs ?? (mode === 'slow' ? 200 : 0);
  if (delay > 0) await sleep(delay, undefined, { signal: x.signal });

  const payload = {
    id: g.id,
    provider: PROVIDER,
    model: g.model,
    object: 'text_completion',
    created: g.created,
    choices: choicesFor(x.body).map((c, index) => ({
      index,
      text: c.pieces.join(''),
      finish_reason: c.finish,
      native_finish_reason: c.finish,
      logprobs: null,
    })),
    usage: expectedCompletionsUsage(x.body),
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
  w.start();
  await w.comment();

  const choices = choicesFor(x.body);
  // Choices one after the other; the partial modes count pieces across all of them.
  const deltas = choices.flatMap((c, index) => c.pieces.map((text) => ({ index, text })));
  for (const { index, text } of PARTIAL_MODES.has(mode) ? deltas.slice(0, fake.chunks ?? 2) : deltas) {
    await w.event(chunk(g, index, text));
  }
  if (mode === 'stall') return; // socket stays open until the client or close() ends it
  if (mode === 'drop' || mode === 'drop_after_headers') {
    await sleep(20, undefined, { signal: x.signal }); // let written chunks leave before the reset
    return dropConnection(x);
  }
  if (mode === 'midstream_error') {
    // HTTP status is already 200, so the failure travels as an event; no [DONE] follows.
    await w.event({ ...chunk(g, 0, '', 'error'), error: { code: fake.errorCode ?? 502, message: 'Provider returned error' } });
    return w.end();
  }

  await w.comment();
  for (const [index, c] of choices.entries()) await w.event(chunk(g, index, '', c.finish));
  // As on chat, usage arrives after the finish chunks whether or not the client asked for it.
  await w.event(usageChunk(chunk(g, 0, ''), expectedCompletionsUsage(x.body), fake.usageShape));
  await w.event('[DONE]');
  w.end();
}
