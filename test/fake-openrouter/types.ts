import type { IncomingMessage, ServerResponse } from 'node:http';

export interface FakeOptions {
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 'sk-or-v1-fake'. */
  apiKey?: string;
}

export interface RecordedRequest {
  method: string;
  /** Request target as received, e.g. `/api/v1/chat/completions` (query string included). */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body, or undefined when there was none (or it was not JSON). */
  body: any;
  /** True if the client closed the connection before the response finished. */
  aborted: boolean;
  /** True once the whole response was handed to the OS. */
  finished: boolean;
}

export interface FakeOpenRouter {
  /** e.g. http://127.0.0.1:PORT/api/v1 */
  baseUrl: string;
  port: number;
  /** Every request in arrival order (including /models). */
  requests: RecordedRequest[];
  /** Clears requests, per-key counters and unclaimed aborts. */
  reset(): void;
  /** Resolves with the next aborted request not yet returned by an earlier call (rejects on timeout, default 2000 ms). */
  waitForAbort(timeoutMs?: number): Promise<RecordedRequest>;
  /** Closes the server and destroys open sockets; never hangs. */
  close(): Promise<void>;
}

/** One request/response pair being served. */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  rec: RecordedRequest;
  body: any;
  /** Aborted when the client goes away or the server closes: stops timers and writes. */
  signal: AbortSignal;
  /** Set when the fake itself kills the socket (mode "drop"), so it is not recorded as a client abort. */
  selfClosed: boolean;
}
