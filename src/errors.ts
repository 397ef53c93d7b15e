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
  conflict: { status: 409, type: 'invalid_request_error' },
  rate_limit_exceeded: { status: 429, type: 'requests' },
  insufficient_quota: { status: 429, type: 'insufficient_quota' },
  upstream_not_configured: { status: 503, type: 'server_error' },
  upstream_unavailable: { status: 503, type: 'server_error' },
  upstream_error: { status: 502, type: 'server_error' },
  upstream_timeout: { status: 504, type: 'server_error' },
  upstream_stream_interrupted: { status: 502, type: 'server_error' },
  admin_disabled: { status: 503, type: 'server_error' },
  service_unavailable: { status: 503, type: 'server_error' },
  internal_error: { status: 500, type: 'server_error' },
} as const;

export type ErrorCode = keyof typeof CODES;

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
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

/** An upstream error passed on: its status kept, OpenRouter's numeric `code` turned into a string. */
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

const TYPE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'insufficient_quota',
  403: 'permission_error',
  404: 'not_found_error',
  408: 'timeout_error',
  413: 'invalid_request_error',
  422: 'invalid_request_error',
  429: 'rate_limit_error',
};

/**
 * Normalizes whatever an upstream sent as an error (OpenRouter: `{"error":{"code":<number>,
 * "message","metadata"}}`, sometimes a bare string or HTML) into OpenAI's shape.
 */
export function normalizeUpstreamError(status: number, payload: unknown): OpenAIErrorBody {
  const raw = (payload && typeof payload === 'object' && 'error' in payload ? (payload as any).error : payload) as any;
  let message = 'Upstream error';
  let code: string | null = null;
  let type: string | null = null;
  let param: string | null = null;
  if (typeof raw === 'string' && raw.trim()) message = raw.slice(0, 500);
  else if (raw && typeof raw === 'object') {
    if (typeof raw.message === 'string' && raw.message) message = raw.message;
    if (raw.code !== undefined && raw.code !== null) code = String(raw.code);
    if (typeof raw.type === 'string') type = raw.type;
    if (typeof raw.param === 'string') param = raw.param;
  }
  type ??= TYPE_BY_STATUS[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
  code ??= status ? String(status) : 'upstream_error';
  return { error: { message, type, param, code } };
}
