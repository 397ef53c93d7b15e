import type { ModelInfo } from '../catalog/catalog.js';
import type { RequestOutcome } from '../proxy/outcome.js';
import { countMessageTokens, countTextTokens } from '../tokens/count-tokens.js';
import { formatDecimal, parseDecimal, priceTimes } from './decimal.js';

/** One ledger row, as the writer queues, spills and inserts it. */
export interface UsageRecord {
  requestId: string;
  /** The client's `x-request-id` (correlation only); absent in records spilled by older versions. */
  clientRequestId?: string | null;
  createdAt: string; // ISO-8601, UTC
  workspaceId: string;
  keyId: string;
  route: string;
  modelRequested: string | null;
  modelServed: string | null;
  model: string;
  threadId: string | null;
  stream: boolean;
  status: string;
  httpStatus: number;
  errorCode: string | null;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  costUsd: string;
  costSource: 'upstream' | 'catalog' | 'none';
  estimated: boolean;
  latencyMs: number;
  ttfbMs: number | null;
  generationId: string | null;
  provider: string | null;
}

const MAX_INT = 2_147_483_647;

/** An upstream's token figure as the int column takes it: whole, non-negative, within int4. */
function tokenCount(n: number): number {
  return Number.isFinite(n) ? Math.min(MAX_INT, Math.max(0, Math.round(n))) : 0;
}

/** A duration for the real column: finite and non-negative (a clock oddity must not poison a row). */
function millis(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.round(n * 1000) / 1000 : 0;
}

/**
 * Turns a request's outcome into its ledger record. Billing figures come from the upstream's usage
 * (cost: `usage.cost`, else catalog price × tokens). A stream cut short has no upstream usage: its
 * prompt and what was streamed are counted with the tokenizer and the record is marked estimated.
 */
export function toUsageRecord(outcome: RequestOutcome, lookupModel: (id: string) => ModelInfo | undefined): UsageRecord {
  const model = outcome.servedModel ?? outcome.requestedModel ?? 'unknown';
  let prompt = 0;
  let completion = 0;
  let cached = 0;
  let reasoning = 0;
  let estimated = false;
  let cost: string | null = null;
  if (outcome.usage) {
    prompt = tokenCount(outcome.usage.promptTokens);
    completion = tokenCount(outcome.usage.completionTokens);
    cached = tokenCount(outcome.usage.cachedTokens);
    reasoning = tokenCount(outcome.usage.reasoningTokens);
    cost = outcome.usage.cost;
  } else if (
    outcome.stream &&
    outcome.upstreamHeadersMs !== null &&
    (outcome.route === 'chat.completions' || outcome.route === 'responses')
  ) {
    // The upstream started answering (and billing) but never sent usage: estimate.
    prompt = countMessageTokens(outcome.request?.messages);
    const toolText = outcome.toolCalls.map((c) => c.function.name + c.function.arguments).join('');
    // What the tap did not keep of a very long reply counts at ~4 characters a token.
    completion = countTextTokens(outcome.text) + countTextTokens(toolText) + Math.ceil((outcome.truncatedChars ?? 0) / 4);
    estimated = true;
  }
  let costSource: UsageRecord['costSource'] = 'none';
  let costUsd = '0';
  if (cost !== null) {
    costSource = 'upstream';
    costUsd = formatDecimal(parseDecimal(cost));
  } else if (prompt > 0 || completion > 0) {
    const info = lookupModel(model) ?? (outcome.requestedModel ? lookupModel(outcome.requestedModel) : undefined);
    // A catalog entry without the prices these tokens need (OpenRouter lists variable-priced
    // models with "-1") is no price at all: the record stays unpriced, never a silent $0 "catalog".
    if (info && (prompt === 0 || info.promptPrice !== null) && (completion === 0 || info.completionPrice !== null)) {
      costSource = 'catalog';
      costUsd = formatDecimal(priceTimes(info.promptPrice, prompt) + priceTimes(info.completionPrice, completion));
    }
  }
  return {
    requestId: outcome.requestId,
    clientRequestId: outcome.clientRequestId ?? null,
    createdAt: outcome.startedAt.toISOString(),
    workspaceId: outcome.workspaceId,
    keyId: outcome.keyId,
    route: outcome.route,
    modelRequested: outcome.requestedModel,
    modelServed: outcome.servedModel,
    model,
    threadId: outcome.threadId ?? null,
    stream: outcome.stream,
    status: outcome.status,
    httpStatus: outcome.httpStatus,
    errorCode: outcome.errorCode,
    promptTokens: prompt,
    completionTokens: completion,
    cachedTokens: cached,
    reasoningTokens: reasoning,
    costUsd,
    costSource,
    estimated,
    latencyMs: millis(outcome.totalMs),
    ttfbMs: outcome.firstByteMs === null ? null : millis(outcome.firstByteMs),
    generationId: outcome.generationId,
    provider: outcome.provider,
  };
}
