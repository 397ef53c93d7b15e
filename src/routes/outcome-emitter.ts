import type { RequestOutcome } from '../proxy/outcome.js';
import type { AppContext, AppDeps } from './context.js';

type OutcomeBase = Pick<RequestOutcome, 'route' | 'requestedModel' | 'stream' | 'request'> &
  Partial<Pick<RequestOutcome, 'threadId' | 'memory'>>;
export type OutcomePart = Partial<RequestOutcome> &
  Pick<RequestOutcome, 'status' | 'httpStatus'> & {
    /** Assembles the reply's text and tool calls on first read (streams: only if a consumer needs them). */
    lazyContent?: () => Content;
  };

type Content = Pick<RequestOutcome, 'text' | 'toolCalls'> & { truncatedChars: number };

// The data fields are RequestOutcome's own (declaration merging), assigned in the constructor.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging -- deliberate, see above
interface Outcome extends Omit<RequestOutcome, 'text' | 'toolCalls' | 'truncatedChars'> {}

/**
 * A request's outcome. A class, with the reply's content behind prototype getters: a getter
 * defined per object (a closure per request) lives in an old-space accessor pair, which kept the
 * request's objects alive through young-generation collections until a full GC (and made the
 * object slow-mode). See test/hidden-classes.test.ts.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- the interface above carries the data fields
class Outcome implements RequestOutcome {
  private content: Content | null;
  private lazy: (() => Content) | null;

  // Every field written out (no spreads): this runs once per request on the hot path.
  constructor(
    requestId: string,
    clientRequestId: string | null,
    base: OutcomeBase,
    caller: { workspaceId: string; keyId: string },
    part: OutcomePart,
    startedAt: Date,
    totalMs: number,
  ) {
    this.requestId = requestId;
    this.clientRequestId = clientRequestId;
    this.route = base.route;
    this.workspaceId = caller.workspaceId;
    this.keyId = caller.keyId;
    this.requestedModel = base.requestedModel;
    this.threadId = base.threadId;
    this.servedModel = part.servedModel ?? null;
    this.stream = base.stream;
    this.status = part.status;
    this.httpStatus = part.httpStatus;
    this.errorCode = part.errorCode ?? null;
    this.usage = part.usage ?? null;
    this.finishReason = part.finishReason ?? null;
    this.generationId = part.generationId ?? null;
    this.provider = part.provider ?? null;
    this.startedAt = startedAt;
    this.upstreamHeadersMs = part.upstreamHeadersMs ?? null;
    this.firstByteMs = part.firstByteMs ?? null;
    this.totalMs = totalMs;
    this.request = base.request;
    this.memory = base.memory;
    this.lazy = part.lazyContent ?? null;
    this.content = this.lazy ? null : { text: part.text ?? '', toolCalls: part.toolCalls ?? [], truncatedChars: part.truncatedChars ?? 0 };
  }

  private read(): Content {
    if (!this.content) {
      this.content = this.lazy!();
      this.lazy = null;
    }
    return this.content;
  }

  get text(): string {
    return this.read().text;
  }

  get toolCalls(): RequestOutcome['toolCalls'] {
    return this.read().toolCalls;
  }

  get truncatedChars(): number {
    return this.read().truncatedChars;
  }
}

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
    c.set('outcomeEmitted', true);
    const outcome = new Outcome(
      c.get('requestId'),
      c.get('clientRequestId') ?? null,
      base,
      caller,
      part,
      startedAt,
      part.totalMs ?? performance.now() - t0,
    );
    // Tokens per minute: the request's reservation (made at admission) gives way to its actual usage.
    if (caller.tpm) deps.limiter.settleTokens(caller.keyId, outcome.requestId, outcome.usage?.totalTokens ?? 0).catch(() => {});
    try {
      deps.onOutcome(outcome);
    } catch (err) {
      deps.logger.error({ err, request_id: outcome.requestId }, 'outcome consumer failed');
    }
  };
}
