import { StringDecoder } from 'node:string_decoder';
import { createParser } from 'eventsource-parser';
import type { OpenAIErrorBody } from '../errors.js';
import { parseResponsesUsage, type Usage } from './outcome.js';
import type { StreamTap } from './relay-stream.js';

/** The events that end a Responses stream, carrying the whole response. */
const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);

export interface ResponsesStreamState {
  /** The response as the stream began (`response.created`), then as it ended (the terminal event). */
  response: Record<string, any> | null;
  /** completed | incomplete | failed, once a terminal event came. */
  status: string | null;
  usage: Usage | null;
  /** Reply text streamed so far (at most `maxKeptChars` of it), for an estimate when the stream is cut. */
  text: string;
  truncatedChars: number;
  /** An `error` event's code and message, or the failed response's error. */
  error: { code: string | null; message: string } | null;
}

/**
 * Parses a Responses API stream (`event: <type>` + `data: {…, "sequence_number": n}`) as it passes
 * and returns, per upstream chunk, what to send the client at once: every event as it came, its
 * `event:` and `data:` lines kept (comments too). It keeps the response from `response.created`
 * and from the terminal event (`response.completed`/`incomplete`/`failed`, with the output and the
 * usage). With `holdFinal`, a completed or incomplete ending is held back until `closing()` (the
 * response is stored first: read-your-writes). Deltas are looked into only when the stream is cut.
 */
export function createResponsesStreamTap(opts: { maxKeptChars?: number; holdFinal?: boolean } = {}) {
  const maxKept = opts.maxKeptChars ?? Infinity;
  const state: ResponsesStreamState = { response: null, status: null, usage: null, text: '', truncatedChars: 0, error: null };
  const decoder = new StringDecoder('utf8');
  let out = '';
  let held = '';
  let events = 0;
  let ended = false;
  // Text deltas' payloads, parsed only if the text is wanted (the stream cut short, no usage).
  let deltas: string[] = [];
  let deltaChars = 0;

  const parseJson = (data: string): any => {
    try {
      return JSON.parse(data);
    } catch {
      return null;
    }
  };

  const parser = createParser({
    onComment: (comment) => {
      if (!state.status) out += `: ${comment.trimStart()}\n\n`;
    },
    onEvent: (event) => {
      if (state.status) return; // nothing follows the terminal event
      events++;
      const data = event.data;
      const type = event.event ?? parseJson(data)?.type;
      const framed = event.event ? `event: ${event.event}\ndata: ${data}\n\n` : `data: ${data}\n\n`;
      if (type === 'response.output_text.delta') {
        if (deltaChars < maxKept) {
          deltas.push(data);
          deltaChars += data.length;
        } else state.truncatedChars += data.length;
        out += framed;
        return;
      }
      if (type === 'response.created' || TERMINAL.has(type) || type === 'error') {
        const json = parseJson(data);
        if (type === 'error') {
          const e = json?.error ?? json;
          state.error = {
            code: typeof e?.code === 'string' ? e.code : null,
            message: typeof e?.message === 'string' ? e.message : 'The upstream reported an error.',
          };
        } else if (json?.response && typeof json.response === 'object') {
          state.response = json.response;
          if (TERMINAL.has(type)) {
            state.status = type.slice('response.'.length);
            state.usage = parseResponsesUsage(json.response.usage);
            if (type === 'response.failed') {
              const e = json.response.error;
              state.error ??= {
                code: typeof e?.code === 'string' ? e.code : 'server_error',
                message: typeof e?.message === 'string' ? e.message : 'The response failed.',
              };
            }
          }
        }
        if (opts.holdFinal && (type === 'response.completed' || type === 'response.incomplete')) {
          held = framed;
          return;
        }
      }
      out += framed;
    },
  });

  /** The next sequence number after what the upstream sent (events are numbered from 0). */
  const nextSeq = () => events;

  const failedResponse = (code: string, message: string) => ({
    ...(state.response ?? {}),
    object: 'response',
    status: 'failed',
    error: { code, message },
  });

  const tap: StreamTap & { state: ResponsesStreamState; completeText(): ResponsesStreamState } = {
    state,
    push(bytes: Uint8Array): string {
      parser.feed(decoder.write(bytes));
      const text = out;
      out = '';
      this.verbatim = false;
      return text;
    },
    verbatim: false,
    end(): string {
      ended = true;
      parser.feed(decoder.end());
      const text = out;
      out = '';
      return text;
    },
    hasError: () => state.status === 'failed' || (ended && state.error !== null && !state.status),
    errorCode: () => state.error?.code ?? null,
    finished: () => state.status === 'completed' || state.status === 'incomplete',
    closing: (wasHeld: boolean) => (wasHeld ? held : ''),
    failureEvent(code: string, message: string): string {
      const seq = nextSeq();
      events += 2;
      return (
        `event: error\ndata: ${JSON.stringify({ type: 'error', code, message, param: null, sequence_number: seq })}\n\n` +
        `event: response.failed\ndata: ${JSON.stringify({ type: 'response.failed', sequence_number: seq + 1, response: failedResponse(code, message) })}\n\n`
      );
    },
    jsonError(error: OpenAIErrorBody): string {
      state.error = { code: error.error.code, message: error.error.message };
      state.status = 'failed';
      return this.failureEvent(error.error.code ?? 'server_error', error.error.message);
    },
    /** Assembles the streamed reply text from the deltas held (for an estimate of a stream cut short). */
    completeText(): ResponsesStreamState {
      const held = deltas;
      deltas = [];
      for (const data of held) {
        const delta = parseJson(data)?.delta;
        if (typeof delta === 'string') state.text += delta;
      }
      if (state.text.length > maxKept) {
        state.truncatedChars += state.text.length - maxKept;
        state.text = state.text.slice(0, maxKept);
      }
      return state;
    },
  };
  return tap;
}

export type ResponsesStreamTap = ReturnType<typeof createResponsesStreamTap>;
