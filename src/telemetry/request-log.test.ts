import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createMetrics } from './metrics.js';
import { createRequestLog, timeUpstream, type OutcomeView, type RequestEnd } from './request-log.js';

function setup() {
  const lines: any[] = [];
  const logger = pino({ base: undefined }, { write: (l: string) => lines.push(JSON.parse(l)) });
  const metrics = createMetrics();
  return { lines, metrics, log: createRequestLog({ logger, metrics }) };
}

const end = (over: Partial<RequestEnd> = {}): RequestEnd => ({
  requestId: 'req_1',
  method: 'POST',
  route: '/v1/chat/completions',
  status: 200,
  durationMs: 50,
  fields: { workspace_id: 'ws', key_id: 'key_1', model: 'a/b' },
  awaitOutcome: false,
  ...over,
});

const outcome = (over: Partial<OutcomeView> = {}): OutcomeView => ({
  requestId: 'req_1',
  route: 'chat.completions',
  workspaceId: 'ws',
  keyId: 'key_1',
  requestedModel: 'a/b',
  stream: false,
  status: 'ok',
  httpStatus: 200,
  errorCode: null,
  usage: { promptTokens: 3, completionTokens: 4 },
  upstreamHeadersMs: 30,
  firstByteMs: 40,
  totalMs: 41,
  ...over,
});

describe('createRequestLog', () => {
  it('a non-proxied request is one line when the handler is done', () => {
    const { lines, log } = setup();
    log.end(log.begin('req_1'), end({ route: '/health', method: 'GET', fields: {} }));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ request_id: 'req_1', route: '/health', status: 200, ms: 50, msg: 'request' });
    expect(log.pending).toBe(0);
  });

  it('a finished request leaves nothing reachable from its handle (no outcome, no end, no chain)', () => {
    const { lines, log } = setup();
    const first = log.begin('req_1');
    const second = log.begin('req_1'); // a reused id chains behind the first
    log.outcome(outcome());
    log.end(first, end());
    log.end(second, end({ awaitOutcome: true }));
    log.outcome(outcome({ stream: true }));
    expect(lines).toHaveLength(2);
    for (const h of [first, second]) {
      expect(h.outcome).toBeNull();
      expect(h.end).toBeNull();
      expect(h.next).toBeNull();
    }
    expect(log.pending).toBe(0);
  });

  it('a non-stream outcome (before the handler returns) is merged into the one line, with overhead', () => {
    const { lines, log } = setup();
    const h = log.begin('req_1');
    log.upstreamAnswered('req_1', 20);
    log.outcome(outcome());
    expect(lines).toHaveLength(0);
    log.end(h, end());
    expect(lines).toHaveLength(1);
    // upstream time = 20 (to headers) + 10 (body) → overhead = 50 − 30
    expect(lines[0]).toMatchObject({
      request_id: 'req_1',
      key_id: 'key_1',
      model: 'a/b',
      status: 200,
      outcome: 'ok',
      upstream_ttfb_ms: 20,
      overhead_ms: 20,
      prompt_tokens: 3,
    });
  });

  it('a stream is logged when its outcome arrives, with the final state and total time', () => {
    const { lines, log } = setup();
    const h = log.begin('req_1');
    log.upstreamAnswered('req_1', 8);
    log.end(h, end({ awaitOutcome: true, durationMs: 12 }));
    expect(lines).toHaveLength(0);
    expect(log.pending).toBe(1);
    log.outcome(outcome({ stream: true, status: 'client_aborted', upstreamHeadersMs: 10, totalMs: 900 }));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ status: 200, outcome: 'client_aborted', ms: 900, overhead_ms: 2 });
    expect(log.pending).toBe(0);
  });

  it('a reused request id in flight still gives one line per request', () => {
    const { lines, log } = setup();
    const a = log.begin('dup');
    const b = log.begin('dup');
    log.end(a, end({ requestId: 'dup', awaitOutcome: true }));
    log.end(b, end({ requestId: 'dup', status: 401, route: '/v1/chat/completions' }));
    log.outcome(outcome({ requestId: 'dup', stream: true }));
    expect(lines.map((l) => l.status).sort()).toEqual([200, 401]);
    expect(log.pending).toBe(0);
  });

  it('an outcome without an HTTP side is still logged once', () => {
    const { lines, log } = setup();
    log.outcome(outcome({ requestId: 'lonely' }));
    expect(lines).toEqual([expect.objectContaining({ request_id: 'lonely', route: '/v1/chat/completions', key_id: 'key_1' })]);
  });

  it('timeUpstream reports headersAt under the call’s request id', async () => {
    const seen: [string, number][] = [];
    const client = { send: async (_req: { headers?: Record<string, string> }) => ({ headersAt: 12 }), close: async () => {} };
    const timed = timeUpstream(client, (id, ms) => seen.push([id, ms]));
    await timed.send({ headers: { 'x-request-id': 'r9' } });
    await timed.send({});
    expect(seen).toEqual([['r9', 12]]);
    expect(typeof timed.close).toBe('function');
  });
});
