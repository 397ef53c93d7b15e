import type { IncomingMessage, ServerResponse } from 'node:http';
import { signalFromResponse, type ClientSignal } from '../proxy/client-signal.js';
import { GatewayError } from '../errors.js';
import type { AppContext } from './context.js';

/**
 * The deepest JSON a request body may nest (the body object itself is level 1). Parsing is
 * iterative, but much of what reads a body afterwards (token counting, copies, redaction,
 * JSON.stringify) recurses: past this depth the request is refused before any of it runs.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Reads a JSON object body: 415 for a non-JSON content type, 413 past the limit (also for chunked
 * bodies without a length), 400 for malformed JSON or a non-object. `raw` is the body as received
 * (Node's bytes when served by Node), for forwarding it unchanged without re-encoding.
 */
export async function readJsonObject(c: AppContext, maxBytes: number): Promise<{ body: Record<string, any>; raw: string | Buffer }> {
  const type = c.req.header('content-type');
  if (type && !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
    throw new GatewayError('unsupported_media_type', `Unsupported Content-Type "${type.split(';')[0]}"; send application/json.`);
  }
  const length = Number(c.req.header('content-length'));
  if (Number.isFinite(length) && length > maxBytes) throw tooLarge(maxBytes);
  const incoming = nodeIncoming(c);
  const raw = incoming ? await readNodeBody(incoming, maxBytes) : c.req.raw.body ? await readLimited(c.req.raw.body, maxBytes) : '';
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  if (!text.trim()) throw new GatewayError('invalid_json', 'The request body is empty; send a JSON object.');
  checkJsonDepth(text, MAX_JSON_DEPTH);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new GatewayError('invalid_json', 'We could not parse the JSON body of your request.');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new GatewayError('invalid_json', 'The request body must be a JSON object.');
  }
  return { body: body as Record<string, any>, raw };
}

/**
 * Refuses JSON text nested deeper than `max` arrays/objects, in one pass and without recursion.
 * Strings are skipped with indexOf (brackets in them are text); invalid JSON is left for
 * JSON.parse to refuse. Each backslash run is walked once, so it stays O(n).
 */
export function checkJsonDepth(text: string, max: number): void {
  if (!hasMoreOpeners(text, max)) return; // most bodies: a few indexOf calls, no char-by-char pass
  let depth = 0;
  for (let i = 0, n = text.length; i < n; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22) {
      let end = i;
      for (;;) {
        end = text.indexOf('"', end + 1);
        if (end === -1) return;
        let slash = end - 1;
        while (text.charCodeAt(slash) === 0x5c) slash--;
        if ((end - 1 - slash) % 2 === 0) break; // an even run of backslashes: the quote is not escaped
      }
      i = end;
    } else if (ch === 0x5b || ch === 0x7b) {
      if (++depth > max) {
        throw new GatewayError('invalid_value', `The JSON body is nested deeper than ${max} levels.`);
      }
    } else if (ch === 0x5d || ch === 0x7d) {
      depth--;
    }
  }
}

/** Whether the text holds more than `max` of `[` and `{` together, in or out of strings. */
function hasMoreOpeners(text: string, max: number): boolean {
  let count = 0;
  for (let at = text.indexOf('{'); at !== -1; at = text.indexOf('{', at + 1)) if (++count > max) return true;
  for (let at = text.indexOf('['); at !== -1; at = text.indexOf('[', at + 1)) if (++count > max) return true;
  return false;
}

interface NodeEnv {
  incoming?: IncomingMessage;
  outgoing?: ServerResponse;
}

function nodeIncoming(c: AppContext): IncomingMessage | undefined {
  const incoming = (c.env as NodeEnv | undefined)?.incoming;
  return incoming && typeof incoming.on === 'function' && !incoming.readableEnded ? incoming : undefined;
}

/** Node's ServerResponse when the app is served by @hono/node-server (not under app.request()). */
export function nodeResponse(c: AppContext): ServerResponse | undefined {
  const outgoing = (c.env as NodeEnv | undefined)?.outgoing;
  return outgoing && typeof outgoing.writeHead === 'function' && !outgoing.headersSent ? outgoing : undefined;
}

/** The client-disconnect signal: from Node's response when served by Node, else the web Request's. */
export function clientSignalOf(c: AppContext): ClientSignal {
  const outgoing = (c.env as NodeEnv | undefined)?.outgoing;
  return outgoing && typeof outgoing.once === 'function' ? signalFromResponse(outgoing) : c.req.raw.signal;
}

/** Reads the body from Node's request directly: web streams cost several times the CPU here. */
function readNodeBody(incoming: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      incoming.removeListener('data', onData);
      incoming.removeListener('end', onEnd);
      incoming.removeListener('error', onError);
      incoming.removeListener('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        incoming.resume(); // let the rest drain; the connection is closed after the 413
        return reject(tooLarge(maxBytes));
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new GatewayError('invalid_json', 'The request body could not be read.', { cause: err }));
    };
    const onAborted = () => onError(new Error('client aborted the upload'));
    incoming.on('data', onData);
    incoming.once('end', onEnd);
    incoming.once('error', onError);
    incoming.once('aborted', onAborted);
  });
}

async function readLimited(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<string> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

// The rest of an oversized body is not read: close the connection so no client reuses it mid-upload.
const tooLarge = (maxBytes: number) =>
  new GatewayError('request_too_large', `The request body exceeds the limit of ${maxBytes} bytes.`, { headers: { connection: 'close' } });
