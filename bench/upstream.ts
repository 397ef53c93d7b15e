// A minimal, fast fake OpenRouter for benchmarks: canned answers only, so the numbers measure
// the gateway and not the fake. Runs as its own process; prints "PORT <n>" once listening.
// Loopback only. The stream's first event can be followed by a pause: a request body containing
// `"bench_gap_ms":N` waits N ms after the first event (for time-to-first-byte runs).
// Issue 13 modes (bench/concurrency.ts, bench/large-replies.ts), also chosen by the request body:
// `"bench_spread_ms":N` streams its first content chunk right after the headers (or, with
// `"bench_ttft_ms":T`, a keep-alive comment at once and the first chunk T ms later) and the other nine
// spread over N ms (at most 60 s); `"bench_large_bytes":N` answers about N bytes (at most 2 GiB):
// a stream of `"bench_chunk_bytes"`-sized content chunks (default 32 KiB), or one JSON completion
// whose content is that large; writes wait for 'drain'. GET /bench/stats reports open streams,
// the most open at once, when each request arrived and the bytes each answer sent;
// POST /bench/reset clears them. POST /api/v1/responses answers the Responses API (see responsesAnswer),
// GET /bench/last-responses the last body it got.

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

// POST /api/v1/responses (the Responses API, as the gateway forwards it): the same canned reply,
// the same ten text pieces and the same `bench_gap_ms` pause after the first event as chat's.
// Every answer has its own `resp_…` and `msg_…` ids (the gateway stores responses by id). The
// templates are built once; only the ids are joined in per request. GET /bench/last-responses
// answers the body of the last Responses request as it arrived (what the gateway forwarded).
const responsesUsage = {
  input_tokens: 12,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: 10,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 22,
  cost: 0.0000078,
};
const REPLY = words.join('');
const RESP_ID = '\u0000RESP\u0000';
const MSG_ID = '\u0000MSG\u0000';
const outputText = (text: string) => ({ type: 'output_text', text, annotations: [] });
const responseObject = (status: string, output: object[], u: object | null) => ({
  id: RESP_ID,
  object: 'response',
  created_at: CREATED,
  status,
  model: MODEL,
  output,
  usage: u,
  error: null,
  incomplete_details: null,
  previous_response_id: null,
  store: false,
});
const messageItem = (status: string, content: object[]) => ({ type: 'message', id: MSG_ID, role: 'assistant', status, content });

/** A template split at the id placeholders: parts[0] + resp/msg id + parts[1] + …; `ids` says which id goes where. */
interface Template {
  parts: string[];
  ids: ('resp' | 'msg')[];
}
function template(text: string): Template {
  const parts: string[] = [];
  const ids: ('resp' | 'msg')[] = [];
  const re = /\\u0000(RESP|MSG)\\u0000/g;
  let at = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    parts.push(text.slice(at, m.index));
    ids.push(m[1] === 'RESP' ? 'resp' : 'msg');
    at = m.index + m[0].length;
  }
  parts.push(text.slice(at));
  return { parts, ids };
}
function fill(t: Template, resp: string, msg: string): string {
  let s = t.parts[0];
  for (let i = 0; i < t.ids.length; i++) s += (t.ids[i] === 'resp' ? resp : msg) + t.parts[i + 1];
  return s;
}

const responseJson = template(JSON.stringify(responseObject('completed', [messageItem('completed', [outputText(REPLY)])], responsesUsage)));

/** created, in_progress, output_item.added, content_part.added, 10 text deltas, output_text.done, content_part.done, output_item.done, completed. */
const responsesEvents: Template[] = (() => {
  const at = { item_id: MSG_ID, output_index: 0, content_index: 0 };
  const events: [string, object][] = [
    ['response.created', { response: responseObject('in_progress', [], null) }],
    ['response.in_progress', { response: responseObject('in_progress', [], null) }],
    ['response.output_item.added', { output_index: 0, item: messageItem('in_progress', []) }],
    ['response.content_part.added', { ...at, part: outputText('') }],
    ...words.map((delta): [string, object] => ['response.output_text.delta', { ...at, delta }]),
    ['response.output_text.done', { ...at, text: REPLY }],
    ['response.content_part.done', { ...at, part: outputText(REPLY) }],
    ['response.output_item.done', { output_index: 0, item: messageItem('completed', [outputText(REPLY)]) }],
    ['response.completed', { response: responseObject('completed', [messageItem('completed', [outputText(REPLY)])], responsesUsage) }],
  ];
  return events.map(([type, fields], i) =>
    template(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: i, ...fields })}\n\n`),
  );
})();

let responsesCount = 0;
const idPrefix = `${process.pid.toString(16)}${Date.now().toString(16)}`;
/** The last Responses request body (kept by reference; parsed only when /bench/stats asks). */
let lastResponsesBody = '';

function responsesAnswer(res: ServerResponse, body: string): void {
  lastResponsesBody = body;
  const n = (++responsesCount).toString(16).padStart(10, '0');
  const resp = `resp_bench${idPrefix}${n}`;
  const msg = `msg_bench${idPrefix}${n}`;
  if (!body.includes('"stream":true')) {
    res.setHeader('x-generation-id', resp);
    return sendJson(res, 200, Buffer.from(fill(responseJson, resp, msg)));
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-generation-id': resp });
  res.write(': OPENROUTER PROCESSING\n\n');
  res.write(fill(responsesEvents[0], resp, msg));
  const rest = () => {
    if (res.destroyed) return;
    for (let i = 1; i < responsesEvents.length; i++) res.write(fill(responsesEvents[i], resp, msg));
    res.end();
  };
  const gap = num(body, 'bench_gap_ms', 5_000);
  if (gap) setTimeout(rest, gap);
  else rest();
}

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

/** Counters for the issue 13 modes (bounded: at most 100,000 arrivals and answers kept). */
const stats = {
  resetAt: performance.now(),
  open: 0,
  maxOpen: 0,
  arrivals: [] as number[],
  sent: [] as { bytes: number; contentBytes: number; complete: boolean }[],
};
const KEEP = 100_000;

/** Counts a chat request as open from its arrival to its response's close; returns a byte tally. */
function track(res: ServerResponse): { bytes: number; contentBytes: number; complete: boolean } {
  if (stats.arrivals.length < KEEP) stats.arrivals.push(performance.now() - stats.resetAt);
  stats.open++;
  stats.maxOpen = Math.max(stats.maxOpen, stats.open);
  const tally = { bytes: 0, contentBytes: 0, complete: false };
  res.once('close', () => {
    stats.open--;
    if (stats.sent.length < KEEP) stats.sent.push(tally);
  });
  return tally;
}

/** First content chunk right after the headers, nine more spread over `spreadMs`, finish, usage, [DONE]. */
const PROCESSING = Buffer.from(': OPENROUTER PROCESSING\n\n');

function spreadStream(res: ServerResponse, spreadMs: number, ttftMs: number): void {
  const tally = track(res);
  const write = (b: Buffer) => {
    tally.bytes += b.length;
    res.write(b);
  };
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-generation-id': 'gen-bench-0001' });
  if (ttftMs > 0) {
    // Like OpenRouter: headers and a keep-alive comment at once, the first token after the model's TTFT.
    write(PROCESSING);
    setTimeout(() => {
      if (!res.destroyed) spreadContent(res, write, tally, spreadMs);
    }, ttftMs);
    return;
  }
  spreadContent(res, write, tally, spreadMs);
}

function spreadContent(res: ServerResponse, write: (b: Buffer) => void, tally: { complete: boolean }, spreadMs: number): void {
  write(streamEvents[0]);
  const start = performance.now();
  const gap = spreadMs / (words.length - 1);
  let next = 1;
  const step = () => {
    if (res.destroyed) return;
    write(streamEvents[next++]);
    if (next < words.length) {
      setTimeout(step, Math.max(0, start + gap * next - performance.now()));
      return;
    }
    for (let i = words.length; i < streamEvents.length; i++) write(streamEvents[i]);
    tally.complete = true;
    res.end();
  };
  setTimeout(step, gap);
}

/** ASCII text that needs no JSON escaping, `n` bytes of it. */
const filler = (n: number) =>
  Buffer.from('The quick brown fox jumps over the lazy dog, 0123456789. '.repeat(Math.ceil(n / 57)).slice(0, n));

/** Writes `parts()` in order with backpressure; stops when the client is gone. */
async function writeAll(res: ServerResponse, tally: { bytes: number }, parts: Iterable<Buffer>): Promise<boolean> {
  for (const p of parts) {
    if (res.destroyed) return false;
    tally.bytes += p.length;
    if (!res.write(p)) {
      const ok = await new Promise<boolean>((r) => {
        const done = (v: boolean) => () => {
          res.off('drain', onDrain);
          res.off('close', onClose);
          r(v);
        };
        const onDrain = done(true);
        const onClose = done(false);
        res.once('drain', onDrain);
        res.once('close', onClose);
      });
      if (!ok) return false;
    }
  }
  return true;
}

/** About `total` bytes of SSE: content chunks of `chunkBytes` of text each, finish, usage, [DONE]. */
async function largeStream(res: ServerResponse, total: number, chunkBytes: number): Promise<void> {
  const tally = track(res);
  const event = Buffer.from(chunk({ content: filler(chunkBytes).toString() }, null));
  const tail = [
    chunk({}, 'stop'),
    `data: ${JSON.stringify({ id: 'gen-bench-0001', provider: 'BenchProvider', model: MODEL, object: 'chat.completion.chunk', created: CREATED, choices: [], usage })}\n\n`,
    'data: [DONE]\n\n',
  ].map((x) => Buffer.from(x));
  const first = Buffer.from(chunk({ role: 'assistant', content: '' }, null));
  const count = Math.max(1, Math.ceil((total - first.length - tail.reduce((a, b) => a + b.length, 0)) / event.length));
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-generation-id': 'gen-bench-0001' });
  function* parts() {
    yield first;
    for (let i = 0; i < count; i++) {
      tally.contentBytes += chunkBytes;
      yield event;
    }
    yield* tail;
  }
  if (await writeAll(res, tally, parts())) {
    tally.complete = true;
    res.end();
  }
}

/** One JSON completion whose message content is `size` bytes of text, sent in 64 KiB writes. */
async function largeCompletion(res: ServerResponse, size: number): Promise<void> {
  const tally = track(res);
  const marker = '\u0000CONTENT\u0000';
  const json = JSON.parse(completion.toString());
  json.choices[0].message.content = marker;
  const [head, foot] = JSON.stringify(json)
    .split(JSON.stringify(marker).slice(1, -1))
    .map((x) => Buffer.from(x));
  const piece = filler(65_536);
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': head.length + size + foot.length,
    'x-generation-id': 'gen-bench-0001',
  });
  function* parts() {
    yield head;
    for (let left = size; left > 0; left -= piece.length) {
      const p = left >= piece.length ? piece : piece.subarray(0, left);
      tally.contentBytes += p.length;
      yield p;
    }
    yield foot;
  }
  if (await writeAll(res, tally, parts())) {
    tally.complete = true;
    res.end();
  }
}

function benchStats(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'POST') {
    stats.resetAt = performance.now();
    stats.maxOpen = stats.open;
    stats.arrivals = [];
    stats.sent = [];
  }
  sendJson(res, 200, Buffer.from(JSON.stringify(stats)));
}

const num = (body: string, field: string, max: number) => {
  const m = new RegExp(`"${field}":(\\d+)`).exec(body);
  return m ? Math.min(Number(m[1]), max) : undefined;
};

/** Canned embeddings: one fixed vector per input, of the requested `dimensions` (default 256). */
function embeddings(res: ServerResponse, body: string): void {
  let parsed: any = {};
  try {
    parsed = JSON.parse(body);
  } catch {
    // answered as an empty input below
  }
  const inputs: unknown[] = Array.isArray(parsed.input) ? parsed.input : [parsed.input];
  const dims = Math.min(4_096, Number(parsed.dimensions) || 256);
  const vector = Array.from({ length: dims }, (_, i) => Math.sin(i + 1));
  sendJson(
    res,
    200,
    Buffer.from(
      JSON.stringify({
        object: 'list',
        data: inputs.map((_, index) => ({ object: 'embedding', index, embedding: vector })),
        model: parsed.model,
        usage: { prompt_tokens: 8 * inputs.length, total_tokens: 8 * inputs.length, cost: 0.00000016 * inputs.length },
      }),
    ),
  );
}

function handle(req: IncomingMessage, res: ServerResponse, body: string): void {
  const url = req.url ?? '';
  if (url === '/bench/stats' || url === '/bench/reset') return benchStats(req, res);
  if (url === '/bench/last-responses') return sendJson(res, 200, Buffer.from(lastResponsesBody || '{}'));
  if (req.headers.authorization !== AUTH) return sendJson(res, 401, unauthorized);
  if (req.method === 'GET' && url === `${BASE}/models`) return sendJson(res, 200, models);
  if (req.method === 'POST' && url === `${BASE}/embeddings`) return embeddings(res, body);
  if (req.method === 'POST' && url === `${BASE}/responses`) return responsesAnswer(res, body);
  if (req.method === 'POST' && url === `${BASE}/chat/completions`) {
    const streamed = body.includes('"stream":true');
    const large = num(body, 'bench_large_bytes', 2 ** 31);
    if (large !== undefined) {
      void (streamed ? largeStream(res, large, num(body, 'bench_chunk_bytes', 2 ** 20) || 32_768) : largeCompletion(res, large));
      return;
    }
    const spread = num(body, 'bench_spread_ms', 60_000);
    if (spread !== undefined && streamed) return spreadStream(res, spread, num(body, 'bench_ttft_ms', 10_000) ?? 0);
    if (!streamed) {
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

// A backlog above Node's default 511, for bench/concurrency.ts's 1,000 connections at once.
server.listen({ port: Number(process.env.BENCH_UPSTREAM_PORT ?? 0), host: '127.0.0.1', backlog: 2048 }, () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Never outlive the bench: exit when the parent goes away.
process.on('disconnect', () => process.exit(0));
setTimeout(() => process.exit(0), 15 * 60_000).unref();
