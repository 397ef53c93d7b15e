import { describe, expect, it } from 'vitest';
import type { ModelInfo } from '../catalog/catalog.js';
import type { RequestOutcome, Usage } from '../proxy/outcome.js';
import { countMessageTokens, countTextTokens } from '../tokens/count-tokens.js';
import { toUsageRecord } from './usage-record.js';

const MINI: ModelInfo = {
  id: 'openai/gpt-4o-mini',
  contextLength: 128_000,
  maxCompletionTokens: 16_384,
  promptPrice: '0.00000015',
  completionPrice: '0.0000006',
};
const HAIKU: ModelInfo = {
  id: 'anthropic/claude-3.5-haiku',
  contextLength: 200_000,
  maxCompletionTokens: 8_192,
  promptPrice: '0.0000008',
  completionPrice: '0.000004',
};
const catalog =
  (...models: ModelInfo[]) =>
  (id: string) =>
    models.find((m) => m.id === id);

const usage = (prompt: number, completion: number, extra: Partial<Usage> = {}): Usage => ({
  promptTokens: prompt,
  completionTokens: completion,
  totalTokens: prompt + completion,
  cachedTokens: 0,
  reasoningTokens: 0,
  cost: null,
  ...extra,
});

function outcome(extra: Partial<RequestOutcome> = {}): RequestOutcome {
  return {
    requestId: 'req_1',
    clientRequestId: null,
    route: 'chat.completions',
    workspaceId: 'ws_1',
    keyId: 'key_1',
    requestedModel: 'openai/gpt-4o-mini',
    threadId: null,
    servedModel: 'openai/gpt-4o-mini',
    stream: false,
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    usage: null,
    text: '',
    toolCalls: [],
    finishReason: 'stop',
    generationId: 'gen-1',
    provider: 'FakeProvider',
    startedAt: new Date('2026-11-26T10:00:00.000Z'),
    upstreamHeadersMs: 12,
    firstByteMs: 15.25,
    totalMs: 40.5,
    request: null,
    ...extra,
  };
}

describe('toUsageRecord: cost', () => {
  it('prices by the catalog when the upstream sent no cost: prompt price × prompt tokens + completion price × completion tokens, exactly', () => {
    const r = toUsageRecord(outcome({ usage: usage(1234, 567) }), catalog(MINI));
    // 1234 × 0.00000015 + 567 × 0.0000006 = 0.0001851 + 0.0003402
    expect(r.costUsd).toBe('0.0005253');
    expect(r.costSource).toBe('catalog');
    expect(r.estimated).toBe(false);
  });

  it('prices completion-only and prompt-only usage with the right price each', () => {
    expect(toUsageRecord(outcome({ usage: usage(0, 1000) }), catalog(MINI)).costUsd).toBe('0.0006');
    expect(toUsageRecord(outcome({ usage: usage(1000, 0) }), catalog(MINI)).costUsd).toBe('0.00015');
  });

  it("keeps the upstream's own cost, exactly as sent, over the catalog's", () => {
    const r = toUsageRecord(outcome({ usage: usage(1234, 567, { cost: '0.00001234' }) }), catalog(MINI));
    expect(r.costUsd).toBe('0.00001234');
    expect(r.costSource).toBe('upstream');
    expect(toUsageRecord(outcome({ usage: usage(10, 10, { cost: '0' }) }), catalog(MINI))).toMatchObject({
      costUsd: '0',
      costSource: 'upstream',
    });
  });

  it('prices the model that served the request, else the one requested', () => {
    const served = toUsageRecord(
      outcome({ requestedModel: 'openai/gpt-4o-mini', servedModel: 'anthropic/claude-3.5-haiku', usage: usage(1000, 1000) }),
      catalog(MINI, HAIKU),
    );
    expect(served.costUsd).toBe('0.0048'); // 1000 × 0.0000008 + 1000 × 0.000004
    expect(served.model).toBe('anthropic/claude-3.5-haiku');
    const fallback = toUsageRecord(outcome({ servedModel: 'openai/gpt-4o-mini-2024-07-18', usage: usage(1000, 1000) }), catalog(MINI));
    expect(fallback).toMatchObject({ costUsd: '0.00075', costSource: 'catalog', model: 'openai/gpt-4o-mini-2024-07-18' });
  });

  it('records zero cost, source none, for a model the catalog does not know or a request without tokens', () => {
    expect(toUsageRecord(outcome({ requestedModel: 'x/unknown', servedModel: null, usage: usage(10, 10) }), catalog(MINI))).toMatchObject({
      costUsd: '0',
      costSource: 'none',
      model: 'x/unknown',
    });
    expect(toUsageRecord(outcome({ usage: usage(0, 0) }), catalog(MINI))).toMatchObject({ costUsd: '0', costSource: 'none' });
    expect(
      toUsageRecord(outcome({ requestedModel: null, servedModel: null, status: 'rejected', httpStatus: 400, usage: null }), catalog(MINI)),
    ).toMatchObject({
      model: 'unknown',
      costUsd: '0',
      costSource: 'none',
      promptTokens: 0,
      completionTokens: 0,
    });
  });
});

describe('toUsageRecord: models without a price', () => {
  const noCompletionPrice: ModelInfo = { ...MINI, id: 'x/variable', completionPrice: null };
  const noPromptPrice: ModelInfo = { ...MINI, id: 'x/variable', promptPrice: null };

  it('leaves usage unpriced (never a silent $0 "catalog") when a price these tokens need is missing', () => {
    for (const info of [noCompletionPrice, noPromptPrice]) {
      const r = toUsageRecord(outcome({ servedModel: 'x/variable', usage: usage(100, 50) }), catalog(info));
      expect(r, JSON.stringify(info)).toMatchObject({ costSource: 'none', costUsd: '0' });
    }
  });

  it('prices tokens whose price is known when the missing price is for tokens not used', () => {
    expect(toUsageRecord(outcome({ servedModel: 'x/variable', usage: usage(100, 0) }), catalog(noCompletionPrice))).toMatchObject({
      costSource: 'catalog',
      costUsd: '0.000015',
    });
    expect(toUsageRecord(outcome({ servedModel: 'x/variable', usage: usage(0, 100) }), catalog(noPromptPrice))).toMatchObject({
      costSource: 'catalog',
      costUsd: '0.00006',
    });
  });
});

describe('toUsageRecord: figures a database column can take', () => {
  it('timings are finite and never negative', () => {
    expect(toUsageRecord(outcome({ totalMs: -3, firstByteMs: Number.NaN }), catalog(MINI))).toMatchObject({ latencyMs: 0, ttfbMs: 0 });
    expect(toUsageRecord(outcome({ totalMs: Number.POSITIVE_INFINITY, firstByteMs: 0.0004 }), catalog(MINI))).toMatchObject({
      latencyMs: 0,
      ttfbMs: 0,
    });
    expect(toUsageRecord(outcome({ totalMs: 0.0006 }), catalog(MINI)).latencyMs).toBe(0.001);
  });
});

describe('toUsageRecord: tokens', () => {
  it("takes the upstream's token figures", () => {
    const r = toUsageRecord(outcome({ usage: usage(100, 20, { cachedTokens: 30, reasoningTokens: 5 }) }), catalog(MINI));
    expect(r).toMatchObject({ promptTokens: 100, completionTokens: 20, cachedTokens: 30, reasoningTokens: 5, estimated: false });
  });

  it('estimates a stream cut short after the upstream answered, and prices the estimate', () => {
    const messages = [{ role: 'user', content: 'Tell me about the blue door in the garden.' }];
    const toolCalls = [{ id: 'c1', type: 'function', function: { name: 'open_door', arguments: '{"colour":"blue"}' } }];
    const r = toUsageRecord(
      outcome({
        stream: true,
        status: 'client_aborted',
        httpStatus: 200,
        text: 'The blue door opens onto',
        toolCalls,
        request: { model: 'openai/gpt-4o-mini', messages },
      }),
      catalog(MINI),
    );
    const prompt = countMessageTokens(messages);
    const completion = countTextTokens('The blue door opens onto') + countTextTokens('open_door{"colour":"blue"}');
    expect(r).toMatchObject({ promptTokens: prompt, completionTokens: completion, estimated: true, costSource: 'catalog' });
    expect([prompt, completion]).toEqual([16, 13]);
    expect(r.costUsd).toBe('0.0000102'); // 16 × 0.00000015 + 13 × 0.0000006
  });

  it('does not estimate what never reached the upstream, a non-stream, or embeddings', () => {
    const base = {
      stream: true,
      status: 'client_aborted' as const,
      text: 'partial',
      request: { messages: [{ role: 'user', content: 'hello there' }] },
    };
    for (const extra of [{ upstreamHeadersMs: null }, { stream: false }, { route: 'embeddings' as const }]) {
      const r = toUsageRecord(outcome({ ...base, ...extra }), catalog(MINI));
      expect(r, JSON.stringify(extra)).toMatchObject({
        promptTokens: 0,
        completionTokens: 0,
        estimated: false,
        costUsd: '0',
        costSource: 'none',
      });
    }
  });
});

describe('toUsageRecord: the rest of the row', () => {
  it('carries ids, model names, thread, status and timings', () => {
    const r = toUsageRecord(
      outcome({
        clientRequestId: 'client-7',
        threadId: 'support-42',
        stream: true,
        status: 'upstream_error',
        httpStatus: 502,
        errorCode: 'upstream_error',
        totalMs: 40.12345,
        firstByteMs: 15.25,
      }),
      catalog(MINI),
    );
    expect(r).toMatchObject({
      requestId: 'req_1',
      clientRequestId: 'client-7',
      createdAt: '2026-11-26T10:00:00.000Z',
      workspaceId: 'ws_1',
      keyId: 'key_1',
      route: 'chat.completions',
      modelRequested: 'openai/gpt-4o-mini',
      modelServed: 'openai/gpt-4o-mini',
      threadId: 'support-42',
      stream: true,
      status: 'upstream_error',
      httpStatus: 502,
      errorCode: 'upstream_error',
      latencyMs: 40.123,
      ttfbMs: 15.25,
      generationId: 'gen-1',
      provider: 'FakeProvider',
    });
    expect(toUsageRecord(outcome({ firstByteMs: null, clientRequestId: undefined, threadId: undefined }), catalog(MINI))).toMatchObject({
      ttfbMs: null,
      clientRequestId: null,
      threadId: null,
    });
  });
});
