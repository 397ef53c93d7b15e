// Low-level response writing: JSON bodies, SSE events, and deliberately fragmented writes.

import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Exchange } from './types.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** OpenRouter's error envelope: numeric `code` equal to the HTTP status. */
export function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, { error: { code: status, message, ...extra } }, headers);
}

function throwIfGone(x: Exchange): void {
  if (x.signal.aborted || x.res.destroyed) {
    const err = new Error('client went away');
    err.name = 'AbortError';
    throw err;
  }
}

/**
 * Byte offsets at which to cut one SSE frame so that a client must reassemble it: inside the
 * `data:` field name, in the middle of every multi-byte UTF-8 character, and between the two
 * newlines that end the event.
 */
export function cutPoints(bytes: Buffer): number[] {
  const cuts = new Set<number>();
  if (bytes.subarray(0, 5).toString() === 'data:') cuts.add(2);
  for (let i = 0; i < bytes.length; i++) if (bytes[i] >= 0xc0) cuts.add(i + 1); // after a lead byte
  if (bytes.length >= 2 && bytes[bytes.length - 1] === 10 && bytes[bytes.length - 2] === 10) {
    cuts.add(bytes.length - 1);
  }
  return [...cuts].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
}

/** Write text in fragments, pausing between them so each leaves as its own TCP segment. */
export async function writeFragmented(x: Exchange, text: string): Promise<void> {
  const bytes = Buffer.from(text, 'utf8');
  let from = 0;
  for (const to of [...cutPoints(bytes), bytes.length]) {
    throwIfGone(x);
    x.res.write(bytes.subarray(from, to));
    from = to;
    await sleep(10, undefined, { signal: x.signal });
  }
}

/** Kill the connection without a word; the fake's own doing, so it is not recorded as a client abort. */
export function dropConnection(x: Exchange): void {
  x.selfClosed = true;
  x.res.socket?.destroy();
}

/** A 200 whose JSON body is cut halfway: the generation ran (and was billed), the reply is lost. */
export async function sendJsonThenDrop(x: Exchange, body: unknown, headers: Record<string, string>): Promise<void> {
  const text = JSON.stringify(body);
  x.res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
  x.res.write(text.slice(0, text.length >> 1));
  await sleep(20, undefined, { signal: x.signal });
  dropConnection(x);
}

/** A 200 JSON body written in fragments cut inside UTF-8 characters (see cutPoints). */
export async function sendJsonFragmented(x: Exchange, body: unknown, headers: Record<string, string>): Promise<void> {
  x.res.socket?.setNoDelay(true);
  x.res.writeHead(200, { 'Content-Type': 'application/json', ...headers });
  await writeFragmented(x, JSON.stringify(body));
  x.res.end();
}

export class SseWriter {
  private events = 0;

  constructor(
    private readonly x: Exchange,
    private readonly headers: Record<string, string>,
    private readonly delayMs: number,
    private readonly fragment: boolean,
  ) {}

  start(): void {
    // Nagle would coalesce our small writes; tests rely on seeing them as separate chunks.
    this.x.res.socket?.setNoDelay(true);
    this.x.res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      ...this.headers,
    });
    this.x.res.flushHeaders();
  }

  /** SSE comment: OpenRouter's keep-alive, which clients must ignore. */
  comment(): Promise<void> {
    return this.write(': OPENROUTER PROCESSING\n\n');
  }

  /** One event; `name` adds an `event:` line (the Responses API names every event; chat never does). */
  async event(data: object | '[DONE]', name?: string): Promise<void> {
    if (this.events++ > 0 && this.delayMs > 0) {
      await sleep(this.delayMs, undefined, { signal: this.x.signal });
    }
    const field = name === undefined ? '' : `event: ${name}\n`;
    await this.write(`${field}data: ${data === '[DONE]' ? data : JSON.stringify(data)}\n\n`);
  }

  end(): void {
    throwIfGone(this.x);
    this.x.res.end();
  }

  private async write(text: string): Promise<void> {
    if (this.fragment) return writeFragmented(this.x, text);
    throwIfGone(this.x);
    this.x.res.write(text);
  }
}
