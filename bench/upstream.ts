// A minimal, fast fake OpenRouter for benchmarks: canned answers only, so the numbers measure
// the gateway and not the fake. Runs as its own process; prints "PORT <n>" once listening.
// Loopback only. The stream's first event can be followed by a pause: a request body containing
// `"bench_gap_ms":N` waits N ms after the first event (for time-to-first-byte runs).

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const API_KEY = process.env.BENCH_UPSTREAM_KEY ?? 'sk-or-v1-bench';
const AUTH = `Bearer ${API_KEY}`;
const BASE = '/api/v1';
const CREATED = 1_700_000_000;
const MODEL = 'openai/gpt-4o-mini';

const usage = { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22, cost: 0.0000078, prompt_tokens_details: { cached_tokens: 0 } };

const completion = Buffer.from(
  JSON.stringify({
    id: 'gen-bench-0001',
    provider: 'BenchProvider',
    model: MODEL,
    object: 'chat.completion',
    created: CREATED,
    choices: [
      {
        index: 0,
        logprobs: null,
        finish_reason: 'stop',
        native_finish_reason: 'stop',
        message: { role: 'assistant', content: 'Hello! This is a canned benchmark reply of ten tokens.', refusal: null, reasoning: null },
      },
    ],
    usage,
  }),
);

const words = ['Hello', '!', ' This', ' is', ' a', ' canned', ' benchmark', ' reply', ' of', ' tokens.'];
const chunk = (delta: object, finish: string | null, extra: object = {}) =>
  `data: ${JSON.stringify({
    id: 'gen-bench-0001',
    provider: 'BenchProvider',
    model: MODEL,
    object: 'chat.completion.chunk',
    created: CREATED,
    choices: [{ index: 0, delta, finish_reason: finish, native_finish_reason: finish, logprobs: null }],
    ...extra,
  })}\n\n`;

/** 10 content chunks (the last with finish_reason), a usage chunk, [DONE]: one write each. */
const streamEvents: Buffer[] = [
  ...words.map((w, i) => chunk(i === 0 ? { role: 'assistant', content: w } : { content: w }, null)),
  chunk({}, 'stop'),
  `data: ${JSON.stringify({ id: 'gen-bench-0001', provider: 'BenchProvider', model: MODEL, object: 'chat.completion.chunk', created: CREATED, choices: [], usage })}\n\n`,
  'data: [DONE]\n\n',
].map((s) => Buffer.from(s));

const models = Buffer.from(
  JSON.stringify({
    data: [MODEL, 'anthropic/claude-3.5-haiku'].map((id) => ({
      id,
      name: id,
      created: CREATED,
      context_length: 128_000,
      pricing: { prompt: '0.00000015', completion: '0.0000006' },
      top_provider: { context_length: 128_000, max_completion_tokens: 16_384 },
    })),
  }),
);

function sendJson(res: ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

const unauthorized = Buffer.from(JSON.stringify({ error: { code: 401, message: 'No auth credentials found' } }));
const notFound = Buffer.from(JSON.stringify({ error: { code: 404, message: 'Not found' } }));

function stream(res: ServerResponse, gapMs: number): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-generation-id': 'gen-bench-0001' });
  res.write(': OPENROUTER PROCESSING\n\n');
  res.write(streamEvents[0]);
  const rest = () => {
    if (res.destroyed) return;
    for (let i = 1; i < streamEvents.length; i++) res.write(streamEvents[i]);
    res.end();
  };
  if (gapMs > 0) setTimeout(rest, gapMs);
  else rest();
}

function handle(req: IncomingMessage, res: ServerResponse, body: string): void {
  if (req.headers.authorization !== AUTH) return sendJson(res, 401, unauthorized);
  const url = req.url ?? '';
  if (req.method === 'GET' && url === `${BASE}/models`) return sendJson(res, 200, models);
  if (req.method === 'POST' && url === `${BASE}/chat/completions`) {
    if (!body.includes('"stream":true')) {
      res.setHeader('x-generation-id', 'gen-bench-0001');
      return sendJson(res, 200, completion);
    }
    const gap = /"bench_gap_ms":(\d+)/.exec(body);
    return stream(res, gap ? Math.min(Number(gap[1]), 5_000) : 0);
  }
  sendJson(res, 404, notFound);
}

const server = createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (p: Buffer) => parts.push(p));
  req.on('end', () => handle(req, res, parts.length === 1 ? parts[0].toString() : Buffer.concat(parts).toString()));
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 70_000;

server.listen(Number(process.env.BENCH_UPSTREAM_PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Never outlive the bench: exit when the parent goes away.
process.on('disconnect', () => process.exit(0));
setTimeout(() => process.exit(0), 10 * 60_000).unref();
