import type { RequestOutcome } from '../proxy/outcome.js';
import type { AppContext, AppDeps } from './context.js';

type OutcomeBase = Pick<RequestOutcome, 'route' | 'requestedModel' | 'stream' | 'request'> & Partial<Pick<RequestOutcome, 'threadId' | 'memory'>>;
export type OutcomePart = Partial<RequestOutcome> &
  Pick<RequestOutcome, 'status' | 'httpStatus'> & {
    /** Assembles the reply's text and tool calls on first read (streams: only if a consumer needs them). */
    lazyContent?: () => Pick<RequestOutcome, 'text' | 'toolCalls'>;
  };

/**
 * Builds the function a proxy route calls, exactly once, when its request is over. A failing
 * consumer is logged and never fails the request.
 */
export function outcomeEmitter(c: AppContext, deps: AppDeps, base: OutcomeBase) {
  const caller = c.get('caller');
  const t0 = c.get('startedAt');
  const startedAt = new Date(deps.now());
  let emitted = false;
  return (part: OutcomePart) => {
    if (emitted) return;
    emitted = true;
    // Every field written out (no spreads): this runs once per request on the hot path.
    const outcome: RequestOutcome = {
      requestId: c.get('requestId'),
      route: base.route,
      workspaceId: caller.workspaceId,
      keyId: caller.keyId,
      requestedModel: base.requestedModel,
      threadId: base.threadId,
      servedModel: part.servedModel ?? null,
      stream: base.stream,
      status: part.status,
      httpStatus: part.httpStatus,
      errorCode: part.errorCode ?? null,
      usage: part.usage ?? null,
      text: part.text ?? '',
      toolCalls: part.toolCalls ?? [],
      finishReason: part.finishReason ?? null,
      generationId: part.generationId ?? null,
      provider: part.provider ?? null,
      startedAt,
      upstreamHeadersMs: part.upstreamHeadersMs ?? null,
      firstByteMs: part.firstByteMs ?? null,
      totalMs: part.totalMs ?? performance.now() - t0,
      request: base.request,
      memory: base.memory,
    };
    const lazy = part.lazyContent;
    if (lazy) {
      Object.defineProperty(outcome, 'text', { get: () => lazy().text, enumerable: true });
      Object.defineProperty(outcome, 'toolCalls', { get: () => lazy().toolCalls, enumerable: true });
    }
    // Tokens per minute count the actual usage, once the upstream reported it.
    if (caller.tpm && outcome.usage?.totalTokens) deps.limiter.addTokens(caller.keyId, outcome.usage.totalTokens).catch(() => {});
    try {
      deps.onOutcome(outcome);
    } catch (err) {
      deps.logger.error({ err, request_id: outcome.requestId }, 'outcome consumer failed');
    }
  };
}
