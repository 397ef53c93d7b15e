import { randomBytes } from 'node:crypto';
import { parseUsage, type OutcomeSink } from '../proxy/outcome.js';
import type { UpstreamClient } from '../proxy/upstream-client.js';

/** The key id under which the gateway's own model calls are recorded (on the workspace that caused them). */
export const SUMMARY_KEY_ID = 'gateway:memory-summary';

/**
 * Asks the summary model through the upstream (non-stream) and records the call's usage as the
 * gateway's own, on the thread's workspace, so memory's cost shows up in the ledger.
 */
export function createSummaryClient(opts: {
  upstream: UpstreamClient;
  model: string;
  record: OutcomeSink;
  now: () => number;
  timeoutMs: number;
}) {
  return async (workspaceId: string, threadId: string, prompt: { system: string; user: string }): Promise<string> => {
    const requestId = `sum_${randomBytes(12).toString('hex')}`;
    const started = performance.now();
    const body = {
      model: opts.model,
      messages: [
        { role: 'system', content: prompt.system },
        { role: 'user', content: prompt.user },
      ],
      max_tokens: 800,
      temperature: 0,
    };
    const base = {
      requestId,
      route: 'chat.completions' as const,
      workspaceId,
      keyId: SUMMARY_KEY_ID,
      requestedModel: opts.model,
      threadId,
      stream: false,
      toolCalls: [],
      finishReason: null,
      provider: null,
      startedAt: new Date(opts.now()),
      firstByteMs: null,
      request: body,
    };
    try {
      const res = await opts.upstream.send({
        path: '/chat/completions',
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'x-request-id': requestId },
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
      const json = (await res.body.json()) as any;
      const text = typeof json?.choices?.[0]?.message?.content === 'string' ? json.choices[0].message.content : '';
      opts.record({
        ...base,
        servedModel: json?.model ?? null,
        status: json?.error ? 'upstream_error' : 'ok',
        httpStatus: 200,
        errorCode: null,
        usage: parseUsage(json?.usage),
        text: '',
        generationId: json?.id ?? null,
        upstreamHeadersMs: res.headersAt,
        totalMs: performance.now() - started,
      });
      return json?.error ? '' : text;
    } catch (err) {
      opts.record({
        ...base,
        servedModel: null,
        status: 'upstream_error',
        httpStatus: 502,
        errorCode: 'summary_failed',
        usage: null,
        text: '',
        generationId: null,
        upstreamHeadersMs: null,
        totalMs: performance.now() - started,
      });
      throw err;
    }
  };
}
