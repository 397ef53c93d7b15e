import { z } from 'zod';
import { SCOPES } from '../../keys/key-store.js';
import { SESSION_COOKIE } from '../../middleware/reports-access.js';
import { GROUPS } from '../../usage/reports.js';
import { jsonSchemaOf } from '../body-schema.js';
import { threadIdSchema } from '../thread-params.js';

/**
 * What the OpenAPI document says about answers: the gateway's own resources (as the routes present
 * them), the error shape, its headers and security schemes. Request bodies come from the routes'
 * own schemas (see document.ts); these describe what goes out, so nothing validates against them.
 */

const time = z.iso.datetime({ offset: true });
const list = <T extends z.ZodType>(item: T) => z.object({ object: z.literal('list'), data: z.array(item) });
const deleted = (object: string) => z.object({ id: z.string(), object: z.literal(object), deleted: z.literal(true) });

export const errorBody = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.string().meta({ description: '`invalid_request_error`, `server_error`, `requests`, `insufficient_quota`.' }),
      param: z.string().nullable().meta({ description: 'The field, query parameter or header at fault.' }),
      code: z.string().nullable().meta({
        description:
          "One of the gateway's closed list: `invalid_value`, `missing_required_parameter`, `invalid_api_key`, `rate_limit_exceeded`, `upstream_timeout`, …",
      }),
      upstream: z
        .object({
          status: z.int(),
          code: z.union([z.string(), z.number()]).nullable(),
          message: z.string(),
          provider: z.string().optional(),
        })
        .optional()
        .meta({ description: "What the upstream itself said, on errors it returned (OpenAI's SDKs ignore it)." }),
    }),
  })
  .meta({ description: "OpenAI's error shape, on every error the gateway or the upstream gives." });

const thread = z.object({
  id: threadIdSchema,
  object: z.literal('thread'),
  title: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()),
  summary: z.string().nullable().meta({ description: 'The running summary of older items (MEMORY_SUMMARY_MODEL).' }),
  summary_upto_seq: z.int(),
  created_at: time,
  updated_at: time,
});

const threadItem = z.object({
  id: z.string(),
  object: z.literal('thread.item'),
  seq: z.int(),
  kind: z.enum(['message', 'fact', 'note']),
  role: z.string().nullable(),
  content: z.unknown().meta({ description: 'A string or content parts, secrets redacted.' }),
  tool_calls: z.array(z.unknown()).optional(),
  tool_call_id: z.string().optional(),
  name: z.string().optional(),
  pinned: z.boolean(),
  status: z.enum(['complete', 'incomplete', 'superseded']),
  tokens: z.int(),
  model: z.string().optional(),
  usage: z.record(z.string(), z.unknown()).optional(),
  created_at: time,
});

const apiKey = z.object({
  id: z.string(),
  object: z.literal('api_key'),
  workspace: z.string(),
  workspace_id: z.string(),
  name: z.string(),
  prefix: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  rpm: z.int().nullable(),
  tpm: z.int().nullable(),
  budget_usd: z.string().nullable().meta({ description: 'A decimal string.' }),
  budget_period: z.enum(['day', 'month']).nullable(),
  expires_at: time.nullable(),
  revoked_at: time.nullable(),
  created_at: time,
});

const totals = {
  requests: z.int(),
  errors: z.int(),
  prompt_tokens: z.int(),
  completion_tokens: z.int(),
  cost_usd: z.string().meta({ description: 'Exact decimal string.' }),
  unpriced_requests: z.int(),
  unpriced_tokens: z.int(),
};

/** Response bodies, by component name. */
export const RESOURCES = {
  Error: errorBody,
  Thread: thread,
  ThreadList: list(thread).extend({ has_more: z.boolean() }),
  ThreadItem: threadItem,
  ThreadItemList: list(threadItem).extend({ has_more: z.boolean(), last_seq: z.int().nullable() }),
  ThreadDeleted: deleted('thread.deleted'),
  ThreadItemDeleted: deleted('thread.item.deleted'),
  ThreadContext: z.object({
    object: z.literal('thread.context'),
    thread_id: threadIdSchema,
    model: z.string(),
    messages: z.array(z.unknown()).meta({ description: 'Exactly the messages that would be forwarded.' }),
    tokens: z.object({ memory: z.int(), budget: z.int(), prompt: z.int(), split: z.unknown() }),
    injected_items: z.int(),
    retrieved_items: z.int(),
    retrieval: z.unknown(),
    alignment: z.string(),
  }),
  Workspace: z.object({ id: z.string(), object: z.literal('workspace'), name: z.string(), created_at: time }),
  WorkspaceList: list(z.object({ id: z.string(), object: z.literal('workspace'), name: z.string(), created_at: time })),
  ApiKey: apiKey,
  ApiKeyCreated: apiKey.extend({ key: z.string().meta({ description: 'The key (`cmg_…`), shown this once: only its SHA-256 is kept.' }) }),
  ApiKeyList: list(
    apiKey.extend({
      budget_period_start: z.string().optional(),
      spend_usd: z.string().nullable().optional(),
      budget_remaining_usd: z.string().nullable().optional(),
    }),
  ),
  UsageReport: z.object({
    object: z.literal('usage_report'),
    from: z.iso.date(),
    to: z.iso.date(),
    group_by: z.array(z.enum(GROUPS)),
    recording: z.enum(['on', 'off']),
    data: z.array(
      z.looseObject(totals).meta({
        description: 'One row per group: the group_by fields (day, workspace and workspace_id, key and key_id, model, …), then the totals.',
      }),
    ),
    totals: z.object(totals),
  }),
  UsageRecords: z.object({
    object: z.literal('list'),
    data: z.array(
      z.record(z.string(), z.unknown()).meta({
        description:
          'One ledger record: request_id, created_at, workspace_id, key_id, route, model, status, tokens, cost_usd, latency_ms, …',
      }),
    ),
    next_cursor: z.string().nullable(),
    recording: z.enum(['on', 'off']),
  }),
  Conversation: z.object({
    id: z.string(),
    object: z.literal('conversation'),
    created_at: z.int().meta({ description: 'Unix seconds.' }),
    metadata: z.record(z.string(), z.string()),
  }),
  ConversationDeleted: deleted('conversation.deleted'),
  ItemList: list(z.looseObject({ id: z.string(), type: z.string() })).extend({
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
    has_more: z.boolean(),
  }),
  ResponseDeleted: deleted('response'),
  UpstreamReply: z.looseObject({}).meta({ description: "The upstream's reply as it sent it (OpenAI's shape for this endpoint)." }),
  ModelList: list(z.looseObject({ id: z.string(), object: z.literal('model'), created: z.int(), owned_by: z.string() })).meta({
    description: "The upstream catalog in OpenAI's list shape, OpenRouter's extra fields (context_length, pricing) kept.",
  }),
  Model: z.looseObject({ id: z.string(), object: z.literal('model'), created: z.int(), owned_by: z.string() }),
  Health: z.looseObject({ status: z.literal('ok') }),
  Readiness: z.looseObject({ status: z.enum(['ready', 'degraded', 'not_ready', 'draining']), checks: z.record(z.string(), z.unknown()) }),
} satisfies Record<string, z.ZodType>;

export type Resource = keyof typeof RESOURCES;

export const SECURITY_SCHEMES = {
  gatewayKey: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'cmg_…',
    description:
      'A gateway API key (`Authorization: Bearer cmg_…`), made with `POST /admin/keys` or `npm run cli -- keys create`. Its scopes: `proxy` for /v1 (and /t/{thread}/v1), `reports` for the usage reports of its own workspace.',
  },
  adminToken: {
    type: 'http',
    scheme: 'bearer',
    description: "The operator's ADMIN_TOKEN (`Authorization: Bearer …`). Admin routes answer 503 `admin_disabled` while it is unset.",
  },
  consoleSession: {
    type: 'apiKey',
    in: 'cookie',
    name: SESSION_COOKIE,
    description:
      "The console's session (signed in at /dashboard with the admin token or a `reports` key): HttpOnly, SameSite=Strict. A change (any method but GET) also needs the page's `x-csrf-token` from this origin; a `reports` key's session reads usage only.",
  },
};

const header = (description: string, schema: Record<string, unknown> = { type: 'string' }) => ({ description, schema });

/** Response headers the gateway adds (SPEC.md). */
export const RESPONSE_HEADERS = {
  'x-request-id': header(
    "The gateway's id of this request (its usage record's). An incoming sane `x-request-id` is echoed and kept as `client_request_id`.",
  ),
  'x-thread-id': header('The thread the request joined, when it used one.'),
  'x-memory-status': header(
    'What thread memory did: `ok`, `off` (X-Memory: off, or memory disabled), `unavailable` (the thread could not be read in time: forwarded without memory).',
    { type: 'string', enum: ['ok', 'off', 'unavailable'] },
  ),
  'x-ratelimit-limit-requests': header("The key's requests per minute, when a limit applies.", { type: 'integer' }),
  'x-ratelimit-remaining-requests': header('Requests left in the window.', { type: 'integer' }),
  'x-ratelimit-reset-requests': header('When the window resets (e.g. `12s`).'),
  'x-ratelimit-limit-tokens': header("The key's tokens per minute, when a limit applies.", { type: 'integer' }),
  'x-ratelimit-remaining-tokens': header('Tokens left in the window.', { type: 'integer' }),
  'x-ratelimit-reset-tokens': header('When the token window resets.'),
  'retry-after': header('Seconds to wait (429, and 503 while the database or upstream is unavailable).', { type: 'integer' }),
  'x-should-retry': header('`false` when a retry cannot help or the gateway already retried.'),
};

const requestHeader = (name: string, description: string, schema: Record<string, unknown>) => ({
  name,
  in: 'header',
  required: false,
  description,
  schema,
});

/** Request headers the gateway reads (SPEC.md: thread memory, correlation). */
export const REQUEST_HEADERS = {
  XThreadId: requestHeader(
    'X-Thread-Id',
    "Join this thread: its stored context is added to the request and the exchange written back. Takes precedence over `metadata.thread_id` and `/t/{thread}/v1`. Created on first use, in the caller's workspace.",
    jsonSchemaOf(threadIdSchema),
  ),
  XMemory: requestHeader('X-Memory', 'What memory does with a thread (default `readwrite`; ignored without one).', {
    type: 'string',
    enum: ['off', 'read', 'write', 'readwrite'],
  }),
  XMemoryMaxTokens: requestHeader(
    'X-Memory-Max-Tokens',
    'Cap on what memory adds to this request, in tokens (default MEMORY_DEFAULT_MAX_TOKENS).',
    { type: 'string', pattern: '^\\d+$' },
  ),
  XRequestId: requestHeader(
    'x-request-id',
    'Your own id for the request: echoed back when sane, and kept in the usage record as `client_request_id`.',
    { type: 'string' },
  ),
};
