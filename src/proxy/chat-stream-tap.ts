import { StringDecoder } from 'node:string_decoder';
import { createParser } from 'eventsource-parser';
import { GatewayError, normalizeUpstreamError, renderError, type ErrorCode, type OpenAIErrorBody } from '../errors.js';
import { parseUsage, type ToolCall, type Usage } from './outcome.js';

/** What the tap has seen of a chat stream so far. */
export interface ChatStreamState {
  text: string;
  toolCalls: ToolCall[];
  finishReason: string | null;
  usage: Usage | null;
  servedModel: string | null;
  generationId: string | null;
  provider: string | null;
  sawDone: boolean;
  /** Set when the upstream sent an in-band error; the stream is over for the client then. */
  error: OpenAIErrorBody | null;
  /** Characters of reply text and tool arguments beyond what the tap keeps (`maxKeptChars`); 0 when whole. */
  truncatedChars: number;
}

/**
 * Parses a chat-completions SSE stream as it passes (split lines, split UTF-8, `\r\n` framing)
 * and returns, per upstream chunk, the text to send to the client at once:
 * - every `data:` payload verbatim, re-framed as `data: …\n\n`, and comments (keep-alives);
 * - the usage chunk only if the client asked for it (`stream_options.include_usage`), and then
 *   with `choices: []` as OpenAI sends it (OpenRouter sends an empty-delta choice, or none);
 * - an in-band `{"error":…}` event as one OpenAI-shaped error event, after which nothing more.
 */
export function createChatStreamTap(opts: { includeUsage: boolean; maxKeptChars?: number; holdDone?: boolean }) {
  // What is kept for later (memory write-back, an estimate) is bounded: a reply longer than this is
  // still relayed whole, but only its first `maxKept` characters are kept, and the rest counted.
  const maxKept = opts.maxKeptChars ?? Infinity;
  let kept = 0;
  let pendingChars = 0;
  const state: ChatStreamState = {
    text: '',
    toolCalls: [],
    finishReason: null,
    usage: null,
    servedModel: null,
    generationId: null,
    provider: null,
    sawDone: false,
    error: null,
    truncatedChars: 0,
  };
  const decoder = new StringDecoder('utf8');
  let out = '';
  // True while the parser holds no unfinished line: the next chunk may then skip it (see plainEvents).
  let atBoundary = true;
  // Chunks forwarded but not yet looked into: most need no JSON.parse on the hot path. Their
  // content is assembled on demand (memory write-back, or an estimate when usage never came).
  let pending: (string | object)[] = [];

  const parser = createParser({
    onComment: (comment) => {
      if (!state.error && !state.sawDone) out += `: ${comment.trimStart()}\n\n`;
    },
    onEvent: (event) => {
      if (state.error || state.sawDone) return;
      const data = event.data;
      if (data === '[DONE]') {
        state.sawDone = true;
        // Held back when the relay sends it itself, after the exchange is stored (read-your-writes).
        if (!opts.holdDone) out += 'data: [DONE]\n\n';
        return;
      }
      // `"usage":{` and `"error":` cannot occur unescaped inside a JSON string, so a chunk without
      // them is plain content: forwarded verbatim now, parsed later only if someone needs it.
      if (data.indexOf('"usage":{') === -1 && data.indexOf('"error":') === -1 && data.charCodeAt(0) === 123 /* { */) {
        out += `data: ${data}\n\n`;
        pending.push(data);
        if ((pendingChars += data.length) > maxKept) compact();
        return;
      }
      let chunk: any;
      try {
        chunk = JSON.parse(data);
      } catch {
        return; // not JSON: OpenAI clients would throw on it, so it is not forwarded
      }
      if (!chunk || typeof chunk !== 'object') return;
      if (chunk.error) {
        state.error = normalizeUpstreamError(200, chunk); // the code inside decides: the status is 200
        state.finishReason = 'error';
        out += `data: ${JSON.stringify(state.error)}\n\n`;
        return;
      }
      if (chunk.usage) state.usage = parseUsage(chunk.usage);
      pending.push(chunk);
      pendingChars += data.length;
      if (chunk.usage) {
        out += renderUsageChunk(chunk, data);
        return;
      }
      out += `data: ${data}\n\n`;
    },
  });

  /** Looks into the chunks held so far now, keeping their content within the bound, and drops them. */
  function compact() {
    const chunks = pending;
    pending = [];
    pendingChars = 0;
    for (const item of chunks) {
      const chunk = parsed(item);
      if (chunk) observe(chunk);
    }
  }

  /** The part of `text` that still fits in what is kept; the rest is counted as truncated. */
  function keep(text: string): string {
    if (kept + text.length <= maxKept) {
      kept += text.length;
      return text;
    }
    const room = Math.max(0, maxKept - kept);
    kept += room;
    state.truncatedChars += text.length - room;
    return text.slice(0, room);
  }

  function observe(chunk: any) {
    state.generationId ??= typeof chunk.id === 'string' ? chunk.id : null;
    if (typeof chunk.model === 'string') state.servedModel = chunk.model;
    if (typeof chunk.provider === 'string') state.provider = chunk.provider;
    const choice = Array.isArray(chunk.choices) ? chunk.choices.find((c: any) => (c?.index ?? 0) === 0) : undefined;
    if (!choice) return;
    const delta = choice.delta;
    if (delta && typeof delta.content === 'string') state.text += keep(delta.content);
    if (delta && Array.isArray(delta.tool_calls)) for (const call of delta.tool_calls) mergeToolCall(call);
    if (choice.finish_reason) state.finishReason = choice.finish_reason;
  }

  function mergeToolCall(part: any) {
    const index = typeof part?.index === 'number' ? part.index : state.toolCalls.length;
    const call = (state.toolCalls[index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
    if (part.id) call.id = part.id;
    if (part.type) call.type = part.type;
    if (part.function?.name) call.function.name += part.function.name;
    if (typeof part.function?.arguments === 'string') call.function.arguments += keep(part.function.arguments);
  }

  function renderUsageChunk(chunk: any, data: string): string {
    const choices: any[] = Array.isArray(chunk.choices) ? chunk.choices : [];
    const meaningful = choices.filter((c) => c && (c.finish_reason || hasContent(c.delta)));
    let text = '';
    if (meaningful.length > 0) {
      // Some providers put usage on the last content chunk: keep the content, move usage out.
      const { usage: _usage, ...rest } = chunk;
      text += `data: ${JSON.stringify(opts.includeUsage ? { ...rest, usage: null } : rest)}\n\n`;
    }
    if (opts.includeUsage) {
      text += choices.length === 0 && 'choices' in chunk ? `data: ${data}\n\n` : `data: ${JSON.stringify({ ...chunk, choices: [] })}\n\n`;
    }
    return text;
  }

  const parsed = (item: string | object): any => {
    if (typeof item !== 'string') return item;
    try {
      return JSON.parse(item);
    } catch {
      return null; // forwarded as it came; nothing to learn from it
    }
  };

  /** The ending only (finish reason, served model, ids) from the last few chunks; content stays pending. */
  function observeEnding() {
    for (const item of pending.slice(-3)) {
      const chunk = parsed(item);
      if (!chunk) continue;
      state.generationId ??= typeof chunk.id === 'string' ? chunk.id : null;
      if (typeof chunk.model === 'string') state.servedModel = chunk.model;
      if (typeof chunk.provider === 'string') state.provider = chunk.provider;
      const choice = Array.isArray(chunk.choices) ? chunk.choices.find((c: any) => (c?.index ?? 0) === 0) : undefined;
      if (choice?.finish_reason) state.finishReason = choice.finish_reason;
    }
  }

  return {
    state,
    /**
     * Completes `state`. With `content`, every forwarded chunk is looked into, in order (reply text
     * and tool calls); without, only the ending, which is all the ledger usually needs.
     */
    complete(content: boolean): ChatStreamState {
      if (!content) {
        observeEnding();
        return state;
      }
      const chunks = pending;
      pending = [];
      for (const item of chunks) {
        const chunk = parsed(item);
        if (chunk) observe(chunk);
      }
      return state;
    },
    /**
     * Feeds upstream bytes; returns what to send the client now (may be empty). `verbatim` tells
     * whether that is exactly the bytes that came in (then the caller may forward them as they are).
     */
    push(bytes: Uint8Array): string {
      const input = decoder.write(bytes);
      // Fast path: whole plain events (all ASCII, nothing held back) go out as they came, and only
      // their payloads are kept for later; the parser would produce exactly the same.
      if (atBoundary && !state.error && !state.sawDone && input.length === bytes.length && plainEvents(input, pending)) {
        this.verbatim = true;
        if ((pendingChars += input.length) > maxKept) compact();
        return input;
      }
      parser.feed(input);
      if (input) atBoundary = input.endsWith('\n\n');
      const text = out;
      out = '';
      // Same length in characters and bytes: all ASCII and no partial character held back, so the
      // bytes are exactly this text (a held-back partial character would otherwise be sent twice).
      this.verbatim = text.length === bytes.length && input.length === bytes.length && text === input;
      return text;
    },
    verbatim: false,
    /** Flushes the decoder at the end of the upstream body. */
    end(): string {
      parser.feed(decoder.end());
      const text = out;
      out = '';
      return text;
    },
    hasError: () => state.error !== null,
    errorCode: () => state.error?.error.code ?? null,
    finished(): boolean {
      return state.sawDone || !!this.complete(false).finishReason;
    },
    /** Some upstreams end without [DONE] after a finish_reason; clients still need it (and it was held back for beforeEnd). */
    closing: (held: boolean) => (!state.sawDone || held ? 'data: [DONE]\n\n' : ''),
    failureEvent: (code: string, message: string) =>
      `data: ${JSON.stringify(renderError(new GatewayError(code as ErrorCode, message)))}\n\n`,
    jsonError(error: OpenAIErrorBody): string {
      state.error = error;
      state.finishReason = 'error';
      return `data: ${JSON.stringify(error)}\n\n`;
    },
  };
}

/**
 * When `text` is only complete plain events, each `data: {…}` followed by a blank line (or
 * comments), with no usage, error or [DONE] among them and no CR framing, pushes their payloads
 * to `payloads` and returns true. Anything else returns false and pushes nothing.
 */
function plainEvents(text: string, payloads: (string | object)[]): boolean {
  const n = text.length;
  if (n < 2 || text.charCodeAt(n - 1) !== 10 || text.charCodeAt(n - 2) !== 10) return false;
  if (text.indexOf('\r') !== -1 || text.indexOf('"usage":{') !== -1 || text.indexOf('"error":') !== -1) return false;
  const found: number[] = [];
  let pos = 0;
  while (pos < n) {
    const eol = text.indexOf('\n', pos);
    const first = text.charCodeAt(pos);
    if (eol === pos) {
      pos++; // blank line
    } else if (first === 58 /* : */) {
      pos = eol + 1; // comment
    } else if (text.startsWith('data: {', pos) && text.charCodeAt(eol + 1) === 10) {
      found.push(pos + 6, eol);
      pos = eol + 2;
    } else {
      return false;
    }
  }
  for (let i = 0; i < found.length; i += 2) payloads.push(text.slice(found[i], found[i + 1]));
  return true;
}

function hasContent(delta: any): boolean {
  if (!delta || typeof delta !== 'object') return false;
  return (
    (typeof delta.content === 'string' && delta.content.length > 0) ||
    (Array.isArray(delta.tool_calls) && delta.tool_calls.length > 0) ||
    !!delta.refusal
  );
}

export type ChatStreamTap = ReturnType<typeof createChatStreamTap>;
