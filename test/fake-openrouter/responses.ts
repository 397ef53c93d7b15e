// POST /api/v1/responses: OpenRouter's Responses API (beta). It is stateless, so the fake refuses
// `previous_response_id` and `conversation`: any chaining that works through the gateway is the
// gateway's own. Failure modes are chat's (see chat.ts) where they apply. See "The Responses API" in
// /work/shared/PROTOCOL.md.

import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  argPiecesOf,
  controlOf,
  costOf,
  generationId,
  piecesOf,
  randomId,
  replyFor,
  textOf,
  toolArgsOf,
  type FakeControl,
} from './behaviour.js';
import { findModel } from './catalog.js';
import { answeredUpFront, PARTIAL_MODES } from './chat.js';
import { dropConnection, sendError, sendJson, sendJsonFragmented, sendJsonThenDrop, SseWriter } from './io.js';
import type { Exchange } from './types.js';

/** Reasoning tokens spent when the request sets `reasoning`; part of output_tokens, as OpenAI counts them. */
export const REASONING_TOKENS = 8;

export interface FakeResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
  cost: number;
}

/** `input` as a list of items: a string is one user message. */
function itemsOf(body: any): any[] {
  if (typeof body?.input === 'string') return [{ role: 'user', content: body.input }];
  return Array.isArray(body?.input) ? body.input : [];
}

/** `{role, content}` and `{type:"message", role, content}` are both messages. */
function isMessage(item: any): boolean {
  return typeof item?.role === 'string' && (item.type === undefined || item.type === 'message');
}

/** The input as chat messages (instructions first, as the system message), so replies derive as chat's do. */
function messagesOf(body: any): { role: string; content: string }[] {
  const messages = typeof body?.instructions === 'string' ? [{ role: 'system', content: body.instructions }] : [];
  for (const item of itemsOf(body)) if (isMessage(item)) messages.push({ role: item.role, content: textOf(item.content) });
  return messages;
}

/** Text an item puts before the model: message parts, a call's name and arguments, a call's output, a reasoning summary. */
function itemText(item: any): string {
  if (isMessage(item)) return textOf(item.content);
  if (item?.type === 'function_call') return `${item.name ?? ''}${item.arguments ?? ''}`;
  if (item?.type === 'function_call_output') return textOf(item.output);
  if (item?.type === 'reasoning') return textOf(item.summary);
  return '';
}

/** ceil(chars / 4) over the instructions and every input item, plus 3 per item (chat counts 3 per message). */
export function responsesInputTokensOf(body: any): number {
  const texts = [...(typeof body?.instructions === 'string' ? [body.instructions] : []), ...itemsOf(body).map(itemText)];
  const chars = texts.reduce((n, s) => n + s.length, 0);
  return Math.ceil(chars / 4) + 3 * texts.length;
}

/** The full reply text to this body, derived from its last user message exactly as chat's replyFor. */
export function responsesReplyFor(body: any): string {
  return replyFor({ fake: body?.fake, messages: messagesOf(body) });
}

interface Plan {
  /** Set when the answer is a function call instead of a message. */
  call?: { name: string };
  reasoning: boolean;
  /** The pieces of the answer's text (or call arguments), one token each, cut at max_output_tokens. */
  pieces: string[];
  /** True when max_output_tokens cut the answer short. */
  incomplete: boolean;
}

function planFor(body: any): Plan {
  const fake = controlOf(body);
  const reasoning = body?.reasoning != null;
  // As chat, a call only when the test asks for one; a function_call_output to answer means the call is done.
  const calls = fake.mode === 'tool_calls' && body?.tool_choice !== 'none' && itemsOf(body).at(-1)?.type !== 'function_call_output';
  const all = calls ? argPiecesOf(toolArgsOf(fake)) : piecesOf(responsesReplyFor(body));
  const budget =
    typeof body?.max_output_tokens === 'number' ? Math.max(0, body.max_output_tokens - (reasoning ? REASONING_TOKENS : 0)) : Infinity;
  return {
    call: calls ? { name: toolNameOf(body) } : undefined,
    reasoning,
    pieces: all.slice(0, budget),
    incomplete: all.length > budget,
  };
}

/** A forced `tool_choice: {type:"function", name}`, else the first function tool, else get_weather. */
function toolNameOf(body: any): string {
  if (body?.tool_choice?.type === 'function' && typeof body.tool_choice.name === 'string') return body.tool_choice.name;
  return body?.tools?.find?.((t: any) => t?.type === 'function')?.name ?? 'get_weather';
}

/** The exact `usage` of a successful (or incomplete) response to this body. */
export function expectedResponsesUsage(body: any): FakeResponsesUsage {
  const plan = planFor(body);
  const input = responsesInputTokensOf(body);
  const reasoning = plan.reasoning ? REASONING_TOKENS : 0;
  const output = reasoning + plan.pieces.length;
  const usage: FakeResponsesUsage = {
    input_tokens: input,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: reasoning },
    total_tokens: input + output,
    // OpenRouter adds the cost in USD, as on chat.
    cost: costOf(input, output),
  };
  if (controlOf(body).noCost) delete (usage as Partial<FakeResponsesUsage>).cost;
  return usage;
}

/** One response being produced: ids stay the same in every event that mentions them. */
interface Draft {
  id: string;
  generationId: string;
  createdAt: number;
  model: string;
  body: any;
  plan: Plan;
  reasoningItem?: object;
  itemId: string;
  callId: string;
}

const outputText = (text: string) => ({ type: 'output_text', text, annotations: [] });

/** The answer item (message or function call) with `content` so far; null for the empty item a stream opens. */
function answerItem(d: Draft, content: string | null, status: string): object {
  if (d.plan.call) {
    return { type: 'function_call', id: d.itemId, call_id: d.callId, name: d.plan.call.name, arguments: content ?? '', status };
  }
  return { type: 'message', id: d.itemId, role: 'assistant', status, content: content === null ? [] : [outputText(content)] };
}

function responseObject(d: Draft, status: string, output: object[], usage: FakeResponsesUsage | null, error: object | null = null) {
  const b = d.body;
  return {
    id: d.id,
    object: 'response',
    created_at: d.createdAt,
    status,
    model: d.model,
    output,
    usage,
    error,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: b.instructions ?? null,
    tools: b.tools ?? [],
    tool_choice: b.tool_choice ?? 'auto',
    parallel_tool_calls: b.parallel_tool_calls ?? true,
    previous_response_id: null,
    // Nothing is kept whatever the client asked: `store` is accepted and reported as false.
    store: false,
    metadata: b.metadata ?? {},
    temperature: b.temperature ?? null,
    top_p: b.top_p ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    truncation: b.truncation ?? 'disabled',
    text: b.text ?? { format: { type: 'text' } },
    reasoning: b.reasoning ?? null,
  };
}

/** The error a late provider failure reports; Responses error codes are strings. */
function failure(fake: FakeControl) {
  return { code: String(fake.errorCode ?? 'server_error'), message: 'Provider returned error' };
}

export async function handleResponses(x: Exchange, failCounts: Map<string, number>): Promise<void> {
  const body = x.body;
  if (!body || typeof body !== 'object') return sendError(x.res, 400, 'Request body must be a JSON object');
  if (body.previous_response_id != null) {
    return sendError(x.res, 400, 'previous_response_id is not supported: the Responses API is stateless, send the whole input');
  }
  if (body.conversation != null) {
    return sendError(x.res, 400, 'conversation is not supported: the Responses API is stateless, send the whole input');
  }
  if (typeof body.model !== 'string') return sendError(x.res, 400, 'No model provided');
  const model = findModel(body.model);
  if (!model) return sendError(x.res, 400, `${body.model} is not a valid model ID`);
  if (itemsOf(body).length === 0) return sendError(x.res, 400, 'Input required: specify "input"');
  // As on chat: the input plus the requested output beyond the model's window is a 400.
  const requested = responsesInputTokensOf(body) + Number(body.max_output_tokens ?? 0);
  if (requested > model.context_length) {
    return sendError(
      x.res,
      400,
      `This endpoint's maximum context length is ${model.context_length} tokens. However, you requested about ${requested} tokens.`,
    );
  }

  const fake = controlOf(body);
  if (answeredUpFront(x, fake, failCounts)) return;

  const createdAt = Math.floor(Date.now() / 1000);
  const plan = planFor(body);
  const d: Draft = {
    id: `resp_${randomId(32)}`,
    generationId: generationId(createdAt),
    createdAt,
    model: model.id,
    body,
    plan,
    // Stateless, so the reasoning can only come back through the client: as opaque encrypted content.
    reasoningItem: plan.reasoning
      ? { type: 'reasoning', id: `rs_${randomId(32)}`, summary: [], encrypted_content: randomBytes(96).toString('base64') }
      : undefined,
    itemId: `${plan.call ? 'fc' : 'msg'}_${randomId(32)}`,
    callId: `call_${randomId(24)}`,
  };
  return body.stream === true ? stream(x, d, fake) : nonStream(x, d, fake);
}

async function nonStream(x: Exchange, d: Draft, fake: FakeControl): Promise<void> {
  const mode = fake.mode ?? 'default';
  const headers = { 'X-Generation-Id': d.generationId };
  if (mode === 'stall') return; // nothing to stall in a JSON body: behave like hang
  if (mode === 'drop') return dropConnection(x);
  if (mode === 'midstream_error' || mode === 'nonstream_error_200') {
    // A provider failing late: a 200 carrying a response whose status is "failed".
    return sendJson(x.res, 200, responseObject(d, 'failed', [], null, failure(fake)), headers);
  }
  const delay = fake.delayMs ?? (mode === 'slow' ? 200 : 0);
  if (delay > 0) await sleep(delay, undefined, { signal: x.signal });

  const status = d.plan.incomplete ? 'incomplete' : 'completed';
  const output = [...(d.reasoningItem ? [d.reasoningItem] : []), answerItem(d, d.plan.pieces.join(''), status)];
  const payload = responseObject(d, status, output, expectedResponsesUsage(d.body));
  if (mode === 'drop_after_headers') return sendJsonThenDrop(x, payload, headers);
  if (mode === 'utf8_split') return sendJsonFragmented(x, payload, headers);
  sendJson(x.res, 200, payload, headers);
}

async function stream(x: Exchange, d: Draft, fake: FakeControl): Promise<void> {
  const mode = fake.mode ?? 'default';
  // Pauses go before each delta, not between every lifecycle event, so "slow" paces the text as on chat.
  const delay = fake.delayMs ?? (mode === 'slow' ? 200 : 0);
  const w = new SseWriter(x, { 'X-Generation-Id': d.generationId }, 0, mode === 'utf8_split');
  let sequence = 0;
  // Every event is named twice: an `event:` line and the `type` in its data.
  const send = (type: string, fields: object) => w.event({ type, sequence_number: sequence++, ...fields }, type);
  w.start();
  await w.comment();
  const pending = responseObject(d, 'in_progress', [], null);
  await send('response.created', { response: pending });
  await send('response.in_progress', { response: pending });

  const done: object[] = [];
  if (d.reasoningItem) {
    await send('response.output_item.added', { output_index: 0, item: d.reasoningItem });
    await send('response.output_item.done', { output_index: 0, item: d.reasoningItem });
    done.push(d.reasoningItem);
  }
  const output_index = done.length;
  const item_id = d.itemId;
  const isCall = d.plan.call !== undefined;
  await send('response.output_item.added', { output_index, item: answerItem(d, null, 'in_progress') });
  const at = isCall ? { item_id, output_index } : { item_id, output_index, content_index: 0 };
  if (!isCall) await send('response.content_part.added', { ...at, part: outputText('') });

  const pieces = PARTIAL_MODES.has(mode) ? d.plan.pieces.slice(0, fake.chunks ?? 2) : d.plan.pieces;
  for (const delta of pieces) {
    if (delay > 0) await sleep(delay, undefined, { signal: x.signal });
    await send(isCall ? 'response.function_call_arguments.delta' : 'response.output_text.delta', { ...at, delta });
  }
  if (mode === 'stall') return; // socket stays open until the client or close() ends it
  if (mode === 'drop' || mode === 'drop_after_headers') {
    await sleep(20, undefined, { signal: x.signal }); // let written events leave before the reset
    return dropConnection(x);
  }
  if (mode === 'midstream_error') {
    // HTTP status is already 200: an `error` event, then the response as failed (no usage), then the end.
    const error = failure(fake);
    await send('error', { ...error, param: null });
    const partial = answerItem(d, pieces.join(''), 'incomplete');
    await send('response.failed', { response: responseObject(d, 'failed', [...done, partial], null, error) });
    return w.end();
  }

  const content = d.plan.pieces.join('');
  const status = d.plan.incomplete ? 'incomplete' : 'completed';
  if (isCall) {
    await send('response.function_call_arguments.done', { ...at, arguments: content });
  } else {
    await send('response.output_text.done', { ...at, text: content });
    await send('response.content_part.done', { ...at, part: outputText(content) });
  }
  const item = answerItem(d, content, status);
  await send('response.output_item.done', { output_index, item });
  // response.completed, or response.incomplete when max_output_tokens cut the answer; no [DONE] follows.
  await send(`response.${status}`, { response: responseObject(d, status, [...done, item], expectedResponsesUsage(d.body)) });
  w.end();
}
