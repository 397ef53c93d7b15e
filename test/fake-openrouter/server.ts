// A fake OpenRouter (https://openrouter.ai/api/v1) on node:http, faithful to the wire quirks in
// /work/shared/PROTOCOL.md, for testing the gateway without network or credits.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { CONCEPT_MODEL, conceptEmbeddingOf, embeddingOf, generationId } from './behaviour.js';
import { handleChat } from './chat.js';
import { handleCompletions } from './completions.js';
import { FAKE_MODELS, findModel } from './catalog.js';
import { sendError, sendJson } from './io.js';
import { handleResponses } from './responses.js';
import type { Exchange, FakeOpenRouter, FakeOptions, RecordedRequest } from './types.js';

export type { Exchange, FakeOpenRouter, FakeOptions, RecordedRequest } from './types.js';
export type { FakeControl, FakeUsage } from './behaviour.js';
export { expectedUsage, replyFor, piecesOf, embeddingOf, UTF8_DEFAULT_REPLY, DEFAULT_TOOL_ARGS } from './behaviour.js';
export { FAKE_MODELS, type FakeModel } from './catalog.js';
export {
  expectedResponsesUsage,
  responsesInputTokensOf,
  responsesReplyFor,
  REASONING_TOKENS,
  type FakeResponsesUsage,
} from './responses.js';
export { expectedCompletionsUsage, completionPromptTokensOf, completionReplyFor } from './completions.js';

const BASE_PATH = '/api/v1';

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

function embeddings(x: Exchange): void {
  const { model, input, encoding_format } = x.body ?? {};
  if (!findModel(model)) return sendError(x.res, 400, `${model} is not a valid model ID`);
  const inputs: unknown[] = typeof input === 'string' ? [input] : Array.isArray(input) ? input : [];
  if (inputs.length === 0 || !inputs.every((s) => typeof s === 'string')) {
    return sendError(x.res, 400, 'input must be a string or an array of strings');
  }
  const texts = inputs;
  const tokens = texts.reduce((n, s) => n + Math.max(1, Math.ceil(s.length / 4)), 0);
  const created = Math.floor(Date.now() / 1000);
  sendJson(x.res, 200, {
    id: generationId(created),
    object: 'list',
    data: texts.map((s, index) => {
      const vector = model === CONCEPT_MODEL ? conceptEmbeddingOf(s) : embeddingOf(s);
      // The openai SDK asks for base64 (little-endian float32) by default and decodes it itself.
      const embedding = encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
      return { object: 'embedding', index, embedding };
    }),
    model,
    provider: 'FakeProvider',
    usage: {
      prompt_tokens: tokens,
      total_tokens: tokens,
      cost: (tokens * 20) / 1e9,
    },
  });
}

export async function startFakeOpenRouter(opts: FakeOptions = {}): Promise<FakeOpenRouter> {
  const host = opts.host ?? '127.0.0.1';
  const apiKey = opts.apiKey ?? 'sk-or-v1-fake';
  const requests: RecordedRequest[] = [];
  const failCounts = new Map<string, number>();
  const live = new Set<AbortController>();
  const sockets = new Set<Socket>();
  let unclaimedAborts: RecordedRequest[] = [];
  const waiters = new Set<{
    resolve: (r: RecordedRequest) => void;
    reject: (e: Error) => void;
    timer: NodeJS.Timeout;
  }>();
  let closing = false;

  function noteAbort(rec: RecordedRequest): void {
    rec.aborted = true;
    const [first] = waiters;
    if (!first) return void unclaimedAborts.push(rec);
    waiters.delete(first);
    clearTimeout(first.timer);
    first.resolve(rec);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: { ...req.headers },
      body: undefined,
      aborted: false,
      finished: false,
    };
    requests.push(rec);
    const ac = new AbortController();
    live.add(ac);
    const x: Exchange = {
      req,
      res,
      rec,
      body: undefined,
      signal: ac.signal,
      selfClosed: false,
    };
    res.on('error', () => {}); // writes racing a client disconnect are expected, not failures
    res.on('finish', () => (rec.finished = true));
    res.on('close', () => {
      live.delete(ac);
      if (!res.writableFinished && !x.selfClosed && !closing) noteAbort(rec);
      ac.abort(); // stops this request's timers and pending writes
    });

    const raw = await readBody(req);
    if (raw.length > 0) {
      try {
        x.body = rec.body = JSON.parse(raw);
      } catch {
        return sendError(res, 400, 'Invalid JSON in request body');
      }
    }

    const auth = /^Bearer\s+(.+)$/i.exec(String(req.headers.authorization ?? ''));
    if (auth?.[1]?.trim() !== apiKey) return sendError(res, 401, 'No auth credentials found');

    const path = new URL(rec.path, 'http://fake').pathname.replace(/\/+$/, '');
    const route = `${req.method} ${path.startsWith(BASE_PATH) ? path.slice(BASE_PATH.length) : path}`;
    switch (route) {
      case 'GET /models':
        return sendJson(res, 200, { data: FAKE_MODELS });
      case 'POST /embeddings':
        return embeddings(x);
      case 'POST /chat/completions':
        return handleChat(x, failCounts);
      case 'POST /responses':
        return handleResponses(x, failCounts);
      case 'POST /completions':
        return handleCompletions(x, failCounts);
      default:
        return sendError(res, 404, 'Not Found');
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if ((err as Error)?.name === 'AbortError' || res.destroyed) return;
      if (!res.headersSent) sendError(res, 500, `Fake server bug: ${(err as Error)?.message}`);
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    baseUrl: `http://${urlHost}:${port}${BASE_PATH}`,
    port,
    requests,
    reset() {
      requests.length = 0;
      failCounts.clear();
      unclaimedAborts = [];
    },
    waitForAbort(timeoutMs = 2000) {
      const ready = unclaimedAborts.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise<RecordedRequest>((resolve, reject) => {
        const waiter = {
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.delete(waiter);
            reject(new Error(`fake OpenRouter: no request was aborted within ${timeoutMs} ms`));
          }, timeoutMs),
        };
        waiters.add(waiter);
      });
    },
    async close() {
      if (closing) return;
      closing = true;
      for (const ac of live) ac.abort();
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.reject(new Error('fake OpenRouter closed'));
      }
      waiters.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
