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
    prompt = outcome.usage.promptTokens;
    completion = outcome.usage.completionTokens;
    cached = outcome.usage.cachedTokens;
    reasoning = outcome.usage.reasoningTokens;
    cost = outcome.usage.cost;
  } else if (outcome.stream && outcome.upstreamHeadersMs !== null && outcome.route === 'chat.completions') {
    // The upstream started answering (and billing) but never sent usage: estimate.
    prompt = countMessageTokens(outcome.request?.messages);
    const toolText = outcome.toolCalls.map((c) => c.function.name + c.function.arguments).join('');
    completion = countTextTokens(outcome.text) + countTextTokens(toolText);
    estimated = true;
  }
  let costSource: UsageRecord['costSource'] = 'none';
  let costUsd = '0';
  if (cost !== null) {
    costSource = 'upstream';
    costUsd = formatDecimal(parseDecimal(cost));
  } else if (prompt > 0 || completion > 0) {
    const info = lookupModel(model) ?? (outcome.requestedModel ? lookupModel(outcome.requestedModel) : undefined);
    if (info) {
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
    latencyMs: Math.round(outcome.totalMs * 1000) / 1000,
    ttfbMs: outcome.firstByteMs === null ? null : Math.round(outcome.firstByteMs * 1000) / 1000,
    generationId: outcome.generationId,
    provider: outcome.provider,
  };
}
