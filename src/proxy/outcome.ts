import type { MemoryContext } from '../memory/memory-service.js';

/** Token usage as the upstream reported it (OpenAI shape plus OpenRouter's `cost`). */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  /** USD as the upstream's decimal text, when given (kept as text: money is never a float here). */
  cost: string | null;
}

export interface ToolCall {
  id: string;
  type: string;
  function: { name: string; arguments: string };
}

/** `aborted`: the gateway itself ended the request (shutdown past its grace period). */
export type OutcomeStatus = 'ok' | 'upstream_error' | 'client_aborted' | 'timeout' | 'rejected' | 'aborted';

/**
 * What happened to one proxied request, produced exactly once per request. The usage ledger and
 * thread memory consume it after the response.
 */
export interface RequestOutcome {
  /** The gateway's id for the request: the ledger key. */
  requestId: string;
  /** The client's own `x-request-id`, kept for correlation only. */
  clientRequestId?: string | null;
  route: 'chat.completions' | 'embeddings' | 'responses' | 'completions';
  workspaceId: string;
  keyId: string;
  requestedModel: string | null;
  /** The memory thread the request used, when any. */
  threadId?: string | null;
  servedModel: string | null;
  stream: boolean;
  status: OutcomeStatus;
  httpStatus: number;
  errorCode: string | null;
  usage: Usage | null;
  /** Assistant text of choice 0, as assembled from the stream or read from the body. */
  text: string;
  toolCalls: ToolCall[];
  /** Characters of the reply beyond what was kept of it (MEMORY_MAX_REPLY_BYTES); 0 when whole. */
  truncatedChars?: number;
  finishReason: string | null;
  generationId: string | null;
  provider: string | null;
  startedAt: Date;
  /** ms from the gateway receiving the request to the upstream's response headers. */
  upstreamHeadersMs: number | null;
  /** ms from the gateway receiving the request to the first body byte sent to the client. */
  firstByteMs: number | null;
  totalMs: number;
  /** The request body as sent upstream (parsed), for memory write-back. */
  request: Record<string, unknown> | null;
  /** The thread memory context of the request, when it used a thread. */
  memory?: MemoryContext;
}

export type OutcomeSink = (outcome: RequestOutcome) => void;

/** Reads the usage object of an OpenAI/OpenRouter response or chunk. */
export function parseUsage(raw: unknown): Usage | null {
  if (!raw || typeof raw !== 'object') return null;
  const u = raw as Record<string, any>;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const prompt = num(u.prompt_tokens);
  const completion = num(u.completion_tokens);
  return {
    promptTokens: prompt,
    completionTokens: completion,
    totalTokens: num(u.total_tokens) || prompt + completion,
    cachedTokens: num(u.prompt_tokens_details?.cached_tokens),
    reasoningTokens: num(u.completion_tokens_details?.reasoning_tokens),
    cost: costText(u.cost),
  };
}

/** Reads the usage object of a Responses API response (`input_tokens`, `output_tokens`, …, OpenRouter's `cost`). */
export function parseResponsesUsage(raw: unknown): Usage | null {
  if (!raw || typeof raw !== 'object') return null;
  const u = raw as Record<string, any>;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const prompt = num(u.input_tokens);
  const completion = num(u.output_tokens);
  return {
    promptTokens: prompt,
    completionTokens: completion,
    totalTokens: num(u.total_tokens) || prompt + completion,
    cachedTokens: num(u.input_tokens_details?.cached_tokens),
    reasoningTokens: num(u.output_tokens_details?.reasoning_tokens),
    cost: costText(u.cost),
  };
}

/**
 * The cost as exact decimal text. JSON numbers such as 0.00001234 are parsed into floats; their
 * shortest round-trip representation (String()) is the upstream's own decimal, expanded here
 * from exponent form so it can go into a numeric column unchanged.
 */
function costText(v: unknown): string | null {
  if (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v)) return v;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return null;
  const s = String(v);
  if (!/e/i.test(s)) return s;
  const [mantissa, expText] = s.toLowerCase().split('e');
  const exp = Number(expText);
  const [intPart, fracPart = ''] = mantissa.split('.');
  const digits = intPart + fracPart;
  const point = intPart.length + exp;
  if (point <= 0) return '0.' + '0'.repeat(-point) + digits;
  if (point >= digits.length) return digits + '0'.repeat(point - digits.length);
  return digits.slice(0, point) + '.' + digits.slice(point);
}
