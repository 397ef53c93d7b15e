import { isIP } from 'node:net';
import { z } from 'zod';
import { maskUrl } from './telemetry/mask-url.js';

// Every validator takes the trimmed string from the environment and says, in one clause, what a
// good value looks like: loadConfig turns each failure into one line naming the variable. None of
// them may throw (a throw would be a stack trace instead of that line).

const fail = (ctx: z.RefinementCtx, message: string) => {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
};

const BOOLEANS: Record<string, boolean> = { true: true, '1': true, yes: true, on: true, false: false, '0': false, no: false, off: false };
const bool = z.string().transform((v, ctx) => BOOLEANS[v.toLowerCase()] ?? fail(ctx, 'must be true or false (or 1/0, yes/no, on/off)'));

const range = (min: number, max: number) => (max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`);

/** Decimal digits only: "1e3", "0x10", "10MB" and "-1" are refused rather than read some other way. */
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.string().transform((v, ctx) => {
    const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN;
    return Number.isSafeInteger(n) && n >= min && n <= max ? n : fail(ctx, `must be a whole number ${range(min, max)}`);
  });

const decimal = (min: number, max: number) =>
  z.string().transform((v, ctx) => {
    const n = /^(\d+(\.\d*)?|\.\d+)$/.test(v) ? Number(v) : NaN;
    return n >= min && n <= max ? n : fail(ctx, `must be a number from ${min} to ${max}`);
  });

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const logLevel = z.string().transform((v, ctx) => {
  const level = v.toLowerCase() as (typeof LOG_LEVELS)[number];
  return LOG_LEVELS.includes(level) ? level : fail(ctx, `must be one of ${LOG_LEVELS.join(', ')}`);
});

/** A URL with one of these schemes. A value without any ("127.0.0.1:5432/db") is told which to add. */
const url = (schemes: string[], example: string) =>
  z.string().transform((v, ctx) => {
    const names = schemes.map((s) => `${s}//`).join(' or ');
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(v))
      return fail(
        ctx,
        `must be a URL starting with ${names}, e.g. ${maskUrl(`${schemes[0]}//${v.replace(/^\/+/, '')}`, { keepUser: false })}`,
      );
    let parsed: URL;
    try {
      parsed = new URL(v);
    } catch {
      return fail(ctx, `is not a valid URL (e.g. ${example})`);
    }
    if (!schemes.includes(parsed.protocol)) return fail(ctx, `must use ${names} (not ${parsed.protocol}//), e.g. ${example}`);
    return v;
  });

/** Visible ASCII without spaces: anything else cannot travel in an Authorization header as is. */
const headerToken = (what: string) => z.string().regex(/^[\x21-\x7e]+$/, `must be ${what} without spaces or non-ASCII characters`);

const modelId = z.string().regex(/^\S+$/, 'must be one model id, e.g. openai/gpt-4o-mini');

/** A host name or an IP address to listen on, nothing more (the port is PORT's). */
const host = z.string().transform((v, ctx) => {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(v)) return fail(ctx, 'must be a host name or IP address, not a URL (e.g. 0.0.0.0 or 127.0.0.1)');
  const bare = v.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare)) return bare;
  if (/^[A-Za-z0-9.-]+:\d+$/.test(v)) return fail(ctx, 'must be a host name or IP address without a port (set the port with PORT)');
  if (/^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/.test(v)) return v;
  return fail(ctx, 'must be a host name or IP address (e.g. 0.0.0.0 for every interface, 127.0.0.1 for this machine only)');
});

/**
 * Comma-separated browser origins (`scheme://host[:port]`, as browsers send them) or `*`. An entry
 * that could never equal an Origin header (no scheme, a path) is refused, not kept to match nothing;
 * a trailing slash is dropped and each origin is normalized as browsers write it (lower-case host,
 * no default port).
 */
const origins = z.string().transform((v, ctx) => {
  const entries = v
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  if (!entries.length) return fail(ctx, 'must list at least one origin, e.g. https://app.example.com');
  const out: string[] = [];
  const bad: string[] = [];
  for (const entry of entries) {
    if (entry === '*') {
      out.push(entry);
      continue;
    }
    let parsed: URL | undefined;
    try {
      parsed = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(entry) ? new URL(entry) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || !parsed.hostname) {
      bad.push(`"${entry}" (an origin has a scheme: https://${entry.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, '').replace(/\/.*$/, '')})`);
    } else if (parsed.pathname !== '/' || parsed.search || parsed.hash || parsed.username || parsed.password) {
      bad.push(`"${entry}" (an origin has no path, query or credentials: ${parsed.origin})`);
    } else {
      out.push(parsed.origin);
    }
  }
  return bad.length ? fail(ctx, `must be origins like https://app.example.com or *; not ${bad.join(', ')}`) : out;
});

/** The environment contract of SPEC.md ("Configuration"). Empty strings count as unset. */
const schema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: host.default('0.0.0.0'),
  OPENROUTER_API_KEY: headerToken('an OpenRouter key (sk-or-v1-…)').optional(),
  OPENROUTER_BASE_URL: url(['https:', 'http:'], 'https://openrouter.ai/api/v1').default('https://openrouter.ai/api/v1'),
  DATABASE_URL: url(['postgres:', 'postgresql:'], 'postgres://user:password@127.0.0.1:5432/gateway').optional(),
  DATA_DIR: z.string().min(1).default('./.data'),
  DATABASE_STATEMENT_TIMEOUT_MS: int(0, 600_000).default(5_000),
  DATABASE_CONNECT_TIMEOUT_MS: int(1_000, 600_000).default(5_000),
  REDIS_URL: url(['redis:', 'rediss:'], 'redis://127.0.0.1:6379').optional(),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 : _ . -')
    .default('cmg:'),
  REDIS_COMMAND_TIMEOUT_MS: int(10, 10_000).default(100),
  ADMIN_TOKEN: z
    .string()
    .min(16, 'must be at least 16 characters (e.g. openssl rand -hex 24)')
    .pipe(headerToken('visible ASCII'))
    .optional(),
  LOG_LEVEL: logLevel.default('info'),
  UPSTREAM_TIMEOUT_MS: int(1).default(600_000),
  UPSTREAM_IDLE_TIMEOUT_MS: int(1).default(120_000),
  MEMORY_DEFAULT_MAX_TOKENS: int(0).default(16_000),
  MEMORY_SUMMARY_MODEL: modelId.optional(),
  MEMORY_ENABLED: bool.default(true),
  MEMORY_REDACT_EMAILS: bool.default(false),
  USAGE_ENABLED: bool.default(true),
  CORS_ORIGINS: origins.optional(),
  MAX_BODY_BYTES: int(1).default(10_485_760),
  SHUTDOWN_GRACE_MS: int(0).default(30_000),
  UPSTREAM_MAX_RETRIES: int(0, 5).default(2),
  UPSTREAM_CONNECT_TIMEOUT_MS: int(100, 600_000).default(10_000),
  UPSTREAM_MAX_CONNECTIONS: int(0).default(0),
  UPSTREAM_QUEUE_TIMEOUT_MS: int(1, 600_000).default(10_000),
  UPSTREAM_RETRY_BUDGET_PERCENT: int(0, 100).default(20),
  UPSTREAM_MAX_BODY_BYTES: int(1024).default(67_108_864),
  MEMORY_MAX_REPLY_BYTES: int(1024).default(1_048_576),
  MEMORY_MAX_INLINE_BYTES: int(1024).default(65_536),
  MEMORY_EMBEDDING_MODEL: modelId.optional(),
  MEMORY_EMBEDDING_DIMENSIONS: int(8, 4096).default(256),
  MEMORY_RETRIEVAL_SHARE: decimal(0, 0.9).default(0.3),
  MEMORY_INDEX_CACHE_MB: int(0, 65_536).default(128),
  KEY_CACHE_TTL_MS: int(0).default(30_000),
});

type Parsed = z.infer<typeof schema>;

/** The variables loadConfig reads, in the order its errors come. */
export const CONFIG_VARIABLES = Object.keys(schema.shape);

export interface Config {
  port: number;
  host: string;
  openrouterApiKey: string | undefined;
  openrouterBaseUrl: string;
  databaseUrl: string | undefined;
  dataDir: string;
  /** Postgres: server-side statement_timeout; the gateway waits this + 1 s per query (0: off). */
  databaseStatementTimeoutMs: number;
  databaseConnectTimeoutMs: number;
  redisUrl: string | undefined;
  redisKeyPrefix: string;
  redisCommandTimeoutMs: number;
  adminToken: string | undefined;
  logLevel: Parsed['LOG_LEVEL'];
  upstreamTimeoutMs: number;
  upstreamIdleTimeoutMs: number;
  memoryDefaultMaxTokens: number;
  memorySummaryModel: string | undefined;
  memoryEnabled: boolean;
  memoryRedactEmails: boolean;
  usageEnabled: boolean;
  corsOrigins: string[] | undefined;
  maxBodyBytes: number;
  shutdownGraceMs: number;
  upstreamMaxRetries: number;
  /** Bound on opening a connection to the upstream. */
  upstreamConnectTimeoutMs: number;
  /** Upstream connections at most; 0: no cap (then nothing ever waits for one). */
  upstreamMaxConnections: number;
  /** With a connection cap: the longest a request waits for a free connection (then 503). */
  upstreamQueueTimeoutMs: number;
  /** Retries the gateway may add, as a percentage of its requests (plus a small floor per second). */
  upstreamRetryBudgetPercent: number;
  /** A non-stream upstream body larger than this is dropped and answered 502. */
  upstreamMaxBodyBytes: number;
  /** The most of a reply kept for thread memory (a longer reply is relayed whole, stored truncated). */
  memoryMaxReplyBytes: number;
  /** Inline data (data URLs, base64 audio and files) larger than this is stored as a placeholder. */
  memoryMaxInlineBytes: number;
  /** The share of memory's budget (after pinned items and the summary) older items retrieved by relevance may take; 0 turns retrieval off. */
  memoryRetrievalShare: number;
  /** Upstream embedding model for vector retrieval; unset: lexical retrieval only. */
  memoryEmbeddingModel: string | undefined;
  /** What each instance's lexical indexes of threads' spans may hold in all (MiB; least recently used threads dropped beyond). */
  memoryIndexCacheMb: number;
  /** Vector size asked of the embedding model (`dimensions`). */
  memoryEmbeddingDimensions: number;
  keyCacheTtlMs: number;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; errors: string[] };

/** Parses the environment. Pure: takes the env object, never reads process.env itself. */
export function loadConfig(env: Record<string, string | undefined>): ConfigResult {
  const cleaned: Record<string, string> = {};
  for (const key of CONFIG_VARIABLES) {
    const value = env[key]?.trim();
    if (value) cleaned[key] = value;
  }
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    // One line per variable (its first problem), in the order of the table above.
    const byName = new Map<string, string>();
    for (const issue of result.error.issues) {
      const name = String(issue.path[0] ?? 'config');
      if (!byName.has(name)) byName.set(name, issue.message);
    }
    const errors = [...byName].map(
      ([name, message]) => `${name}: ${message}${message.includes('"') ? '' : shownValue(name, cleaned[name])}`,
    );
    return { ok: false, errors };
  }
  const e = result.data;
  return {
    ok: true,
    config: {
      port: e.PORT,
      host: e.HOST,
      openrouterApiKey: e.OPENROUTER_API_KEY,
      openrouterBaseUrl: e.OPENROUTER_BASE_URL.replace(/\/+$/, ''),
      databaseUrl: e.DATABASE_URL,
      dataDir: e.DATA_DIR,
      databaseStatementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
      databaseConnectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
      redisUrl: e.REDIS_URL,
      redisKeyPrefix: e.REDIS_KEY_PREFIX,
      redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
      adminToken: e.ADMIN_TOKEN,
      logLevel: e.LOG_LEVEL,
      upstreamTimeoutMs: e.UPSTREAM_TIMEOUT_MS,
      upstreamIdleTimeoutMs: e.UPSTREAM_IDLE_TIMEOUT_MS,
      memoryDefaultMaxTokens: e.MEMORY_DEFAULT_MAX_TOKENS,
      memorySummaryModel: e.MEMORY_SUMMARY_MODEL,
      memoryEnabled: e.MEMORY_ENABLED,
      memoryRedactEmails: e.MEMORY_REDACT_EMAILS,
      usageEnabled: e.USAGE_ENABLED,
      corsOrigins: e.CORS_ORIGINS,
      maxBodyBytes: e.MAX_BODY_BYTES,
      shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
      upstreamMaxRetries: e.UPSTREAM_MAX_RETRIES,
      upstreamConnectTimeoutMs: e.UPSTREAM_CONNECT_TIMEOUT_MS,
      upstreamMaxConnections: e.UPSTREAM_MAX_CONNECTIONS,
      upstreamQueueTimeoutMs: e.UPSTREAM_QUEUE_TIMEOUT_MS,
      upstreamRetryBudgetPercent: e.UPSTREAM_RETRY_BUDGET_PERCENT,
      upstreamMaxBodyBytes: e.UPSTREAM_MAX_BODY_BYTES,
      memoryMaxReplyBytes: e.MEMORY_MAX_REPLY_BYTES,
      memoryMaxInlineBytes: e.MEMORY_MAX_INLINE_BYTES,
      memoryRetrievalShare: e.MEMORY_RETRIEVAL_SHARE,
      memoryIndexCacheMb: e.MEMORY_INDEX_CACHE_MB,
      memoryEmbeddingModel: e.MEMORY_EMBEDDING_MODEL,
      memoryEmbeddingDimensions: e.MEMORY_EMBEDDING_DIMENSIONS,
      keyCacheTtlMs: e.KEY_CACHE_TTL_MS,
    },
  };
}

/** The bad value, quoted, where that is safe: keys and tokens never, URLs with credentials masked. */
function shownValue(name: string, value: string | undefined): string {
  if (value === undefined || /KEY$|TOKEN$/.test(name)) return '';
  const shown = /URL$/.test(name) ? maskUrl(value, { keepUser: false }) : value;
  return ` (got "${shown.length > 120 ? `${shown.slice(0, 117)}...` : shown}")`;
}

/** Loads config from the process environment (and `.env` when present), for entry points only. */
export function loadConfigFromProcess(): ConfigResult {
  try {
    process.loadEnvFile?.('.env');
  } catch {
    // no .env file: the environment alone configures the gateway
  }
  return loadConfig(process.env);
}

/** A config for tests and tools, from defaults plus overrides. */
export function configWith(overrides: Partial<Config>): Config {
  const base = loadConfig({});
  if (!base.ok) throw new Error('default config must be valid');
  return { ...base.config, ...overrides };
}
