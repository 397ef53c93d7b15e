/**
 * The one error type. Every failure a client can see is a GatewayError with a code from this closed
 * list; `renderError` turns it into OpenAI's shape `{"error":{"message","type","param","code"}}`.
 */
const CODES = {
  invalid_api_key: { status: 401, type: 'invalid_request_error' },
  permission_denied: { status: 403, type: 'invalid_request_error' },
  invalid_json: { status: 400, type: 'invalid_request_error' },
  missing_required_parameter: { status: 400, type: 'invalid_request_error' },
  invalid_value: { status: 400, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  request_too_large: { status: 413, type: 'invalid_request_error' },
  unknown_url: { status: 404, type: 'invalid_request_error' },
  not_found: { status: 404, type: 'invalid_request_error' },
  previous_response_not_found: { status: 400, type: 'invalid_request_error' },
  conflict: { status: 409, type: 'invalid_request_error' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error' },
  model_not_found: { status: 404, type: 'invalid_request_error' },
  content_policy_violation: { status: 403, type: 'invalid_request_error' },
  invalid_request: { status: 400, type: 'invalid_request_error' },
  rate_limit_exceeded: { status: 429, type: 'requests' },
  insufficient_quota: { status: 429, type: 'insufficient_quota' },
  upstream_not_configured: { status: 503, type: 'server_error' },
  upstream_unavailable: { status: 503, type: 'server_error' },
  upstream_error: { status: 502, type: 'server_error' },
  server_error: { status: 502, type: 'server_error' },
  upstream_auth_failed: { status: 502, type: 'server_error' },
  upstream_insufficient_credits: { status: 503, type: 'server_error' },
  upstream_timeout: { status: 504, type: 'server_error' },
  upstream_stream_interrupted: { status: 502, type: 'server_error' },
  admin_disabled: { status: 503, type: 'server_error' },
  service_unavailable: { status: 503, type: 'server_error' },
  internal_error: { status: 500, type: 'server_error' },
  /** The client went away before the answer (nginx's 499): nobody reads it, but it is not a gateway fault. */
  client_closed_request: { status: 499, type: 'invalid_request_error' },
} as const;

export type ErrorCode = keyof typeof CODES;

/** What the upstream itself said, kept for debugging (OpenAI SDKs ignore extra fields). */
export interface UpstreamErrorDetail {
  /** The upstream's HTTP status (200 for an error inside a 200 body or a stream). */
  status: number;
  code: string | number | null;
  message: string;
  provider?: string;
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null; upstream?: UpstreamErrorDetail };
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { param?: string; status?: number; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = opts.status ?? CODES[code].status;
    this.type = CODES[code].type;
    this.param = opts.param ?? null;
    this.headers = opts.headers ?? {};
  }
}

/** The OpenAI-shaped body of a gateway error. */
export function renderError(err: GatewayError): OpenAIErrorBody {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.code } };
}

/** An upstream error passed on, already mapped to the gateway's codes (see `mapUpstreamError`). */
export class UpstreamHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: OpenAIErrorBody,
    readonly headers: Record<string, string>,
  ) {
    super(body.error.message);
    this.name = 'UpstreamHttpError';
  }
}

interface Mapped {
  code: ErrorCode;
  status?: number;
  param?: string;
  /** Replaces the upstream's message: the client cannot act on it (the gateway's own key or credits). */
  message?: string;
  /** True when a client retry cannot help: sent as `x-should-retry: false`. */
  final?: boolean;
}

const CONTEXT_LENGTH = /context length|context window|maximum context|too many tokens|prompt is too long|reduce the length/i;
const UNKNOWN_MODEL = /not a valid model|no endpoints found|model .*(does not exist|not found)|unknown model|no such model/i;
const MODERATION = /moderation|flagged/i;

/**
 * OpenRouter's statuses (and the messages that tell cases apart) → the gateway's closed list of
 * codes. The README's "Upstream errors" table mirrors this function.
 */
function classify(status: number, message: string, raw: any): Mapped {
  if (status === 401) {
    return {
      code: 'upstream_auth_failed',
      message:
        "The gateway's upstream API key was refused by OpenRouter (HTTP 401). This is not a problem with your API key: the gateway operator must check OPENROUTER_API_KEY.",
      final: true,
    };
  }
  if (status === 402) {
    return {
      code: 'upstream_insufficient_credits',
      message:
        "The gateway's upstream account has run out of credits (OpenRouter answered HTTP 402). The gateway operator must add credits or raise the upstream key's limit.",
      final: true,
    };
  }
  if (status >= 400 && status < 500 && CONTEXT_LENGTH.test(message))
    return { code: 'context_length_exceeded', param: 'messages', final: true };
  if (status === 404 || (status === 400 && UNKNOWN_MODEL.test(message))) return { code: 'model_not_found', param: 'model', final: true };
  if (status === 403) {
    const flagged = MODERATION.test(message) || Array.isArray(raw?.metadata?.reasons);
    return { code: flagged ? 'content_policy_violation' : 'permission_denied', final: true };
  }
  if (status === 408 || status === 524) return { code: 'upstream_timeout' };
  if (status === 413) return { code: 'request_too_large', final: true };
  if (status === 429) return { code: 'rate_limit_exceeded' };
  if (status === 503 || status === 529) return { code: 'upstream_unavailable' };
  if (status >= 500) return { code: 'server_error' };
  return { code: 'invalid_request', status: status >= 400 && status < 500 ? status : 400, final: true };
}

/** The status an upstream error stands for: its HTTP status, or for a 200 the code inside it. */
function effectiveStatus(httpStatus: number, rawCode: unknown): number {
  if (httpStatus >= 400) return httpStatus;
  const n = typeof rawCode === 'number' ? rawCode : typeof rawCode === 'string' && /^\d{3}$/.test(rawCode) ? Number(rawCode) : NaN;
  return n >= 400 && n < 600 ? n : 502;
}

const MAX_MESSAGE = 200;

/** HTML pages and other non-JSON bodies, reduced to one short line a person can read. */
export function readableText(text: string, status: number): string {
  if (/<\s*(!doctype|html|head|body|title)\b/i.test(text)) {
    const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(text)?.[1];
    const gist = squeeze(title ?? text.replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]*>/g, ' '));
    return cap(`The upstream answered HTTP ${status} with an HTML page${gist ? ` (${gist})` : ''}.`);
  }
  const plain = squeeze(text);
  return plain ? cap(plain) : `The upstream answered HTTP ${status} with an empty body.`;
}

function squeeze(text: string): string {
  return text
    .replace(/&nbsp;/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/\s+/g, ' ')
    .trim();
}

function cap(text: string, max = MAX_MESSAGE): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * Maps whatever an upstream sent as an error (OpenRouter: `{"error":{"code":<number>,"message",
 * "metadata"}}` with the same HTTP status; or an `error` inside a 200 body or stream event; or a
 * bare string, HTML, nothing) to the gateway's codes, OpenAI's shape, and the headers to send.
 * The upstream's own status, code and message stay in `error.upstream`.
 */
export function mapUpstreamError(
  httpStatus: number,
  payload: unknown,
  upstreamHeaders: Record<string, string | string[] | undefined> = {},
): UpstreamHttpError {
  const raw = payload && typeof payload === 'object' && 'error' in payload ? (payload as any).error : payload;
  let message: string;
  let rawCode: string | number | null = null;
  if (raw && typeof raw === 'object') {
    message = typeof raw.message === 'string' && raw.message.trim() ? cap(raw.message, 2_000) : `The upstream answered HTTP ${httpStatus}.`;
    if (typeof raw.code === 'number' || typeof raw.code === 'string') rawCode = raw.code;
  } else {
    message = readableText(typeof raw === 'string' ? raw : '', httpStatus);
  }
  const status = effectiveStatus(httpStatus, rawCode);
  // A string code from the upstream that is already one of ours (OpenRouter streams send
  // "server_error") is kept; anything else is decided by status and message.
  const mapped: Mapped =
    typeof rawCode === 'string' && Object.hasOwn(CODES, rawCode) && httpStatus < 400
      ? { code: rawCode as ErrorCode }
      : classify(status, message, raw);
  const upstream: UpstreamErrorDetail = { status: httpStatus, code: rawCode, message };
  const provider = raw?.metadata?.provider_name;
  if (typeof provider === 'string') upstream.provider = provider;
  const body: OpenAIErrorBody = {
    error: {
      message: mapped.message ?? message,
      type: CODES[mapped.code].type,
      param: mapped.param ?? null,
      code: mapped.code,
      upstream,
    },
  };
  const headers: Record<string, string> = {};
  for (const name of ['retry-after', 'retry-after-ms']) {
    const value = upstreamHeaders[name];
    if (typeof value === 'string') headers[name] = value;
  }
  if (mapped.final) headers['x-should-retry'] = 'false';
  return new UpstreamHttpError(mapped.status ?? CODES[mapped.code].status, body, headers);
}

/** The OpenAI-shaped body alone, for errors that arrive inside a stream (status 200 already sent). */
export function normalizeUpstreamError(status: number, payload: unknown): OpenAIErrorBody {
  return mapUpstreamError(status, payload).body;
}
