import type { UsageRecord } from '../../src/usage/usage-record.js';

let seq = 0;

/** A complete, valid usage record (an `ok` chat request), with the fields a test cares about overridden. */
export function usageRecord(over: Partial<UsageRecord> & Pick<UsageRecord, 'workspaceId' | 'keyId'>): UsageRecord {
  return {
    requestId: `req_fixture_${Date.now()}_${seq++}`,
    createdAt: new Date().toISOString(),
    route: 'chat.completions',
    modelRequested: 'm',
    modelServed: 'm',
    model: 'm',
    threadId: null,
    stream: false,
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    promptTokens: 10,
    completionTokens: 5,
    cachedTokens: 0,
    reasoningTokens: 0,
    costUsd: '0',
    costSource: 'upstream',
    estimated: false,
    latencyMs: 1,
    ttfbMs: 1,
    generationId: null,
    provider: null,
    ...over,
  };
}
