import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])
  .transform((v) => ['true', '1', 'yes', 'on'].includes(v));

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

const url = (protocols: string[]) =>
  z
    .string()
    .url()
    .refine((v) => protocols.includes(new URL(v).protocol), {
      message: `must use ${protocols.map((p) => p.replace(':', '://')).join(' or ')}`,
    });

/** The environment contract of SPEC.md ("Configuration"). Empty strings count as unset. */
const schema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  OPENROUTER_API_KEY: z.string().min(1).optional(),
  OPENROUTER_BASE_URL: url(['http:', 'https:']).default('https://openrouter.ai/api/v1'),
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  DATA_DIR: z.string().min(1).default('./.data'),
  DATABASE_STATEMENT_TIMEOUT_MS: int(0, 600_000).default(5_000),
  DATABASE_CONNECT_TIMEOUT_MS: int(1_000, 600_000).default(5_000),
  REDIS_URL: url(['redis:', 'rediss:']).optional(),
  REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 : _ . -').default('cmg:'),
  REDIS_COMMAND_TIMEOUT_MS: int(10, 10_000).default(100),
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  UPSTREAM_TIMEOUT_MS: int(1).default(600_000),
  UPSTREAM_IDLE_TIMEOUT_MS: int(1).default(120_000),
  MEMORY_DEFAULT_MAX_TOKENS: int(0).default(16_000),
  MEMORY_SUMMARY_MODEL: z.string().min(1).optional(),
  MEMORY_ENABLED: bool.default(true),
  MEMORY_REDACT_EMAILS: bool.default(false),
  USAGE_ENABLED: bool.default(true),
  CORS_ORIGINS: z.string().min(1).optional(),
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
  MEMORY_EMBEDDING_MODEL: z.string().min(1).optional(),
  MEMORY_EMBEDDING_DIMENSIONS: int(8, 4096).default(256),
  MEMORY_RETRIEVAL_SHARE: z.coerce.number().min(0).max(0.9).default(0.3),
  KEY_CACHE_TTL_MS: int(0).default(30_000),
});

type Parsed = z.infer<typeof schema>;

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
  /** Vector size asked of the embedding model (`dimensions`). */
  memoryEmbeddingDimensions: number;
  keyCacheTtlMs: number;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; errors: string[] };

/** Parses the environment. Pure: takes the env object, never reads process.env itself. */
export function loadConfig(env: Record<string, string | undefined>): ConfigResult {
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key]?.trim();
    if (value) cleaned[key] = value;
  }
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const errors = result.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? 'config');
      const shown = name in cleaned && !/KEY|TOKEN|URL/.test(name) ? ` (got "${cleaned[name]}")` : '';
      return `${name}: ${issue.message}${shown}`;
    });
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
      corsOrigins: e.CORS_ORIGINS?.split(',').map((o) => o.trim()).filter(Boolean),
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
      memoryEmbeddingModel: e.MEMORY_EMBEDDING_MODEL,
      memoryEmbeddingDimensions: e.MEMORY_EMBEDDING_DIMENSIONS,
      keyCacheTtlMs: e.KEY_CACHE_TTL_MS,
    },
  };
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
