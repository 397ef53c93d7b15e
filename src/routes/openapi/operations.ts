import { z } from 'zod';
import { createKeyBody, createWorkspaceBody, patchKeyBody } from '../admin.js';
import { chatCompletionRequest } from '../chat-completions.js';
import { completionRequest } from '../completions.js';
import { conversationCreateRequest, conversationItemsRequest, conversationUpdateRequest } from '../conversations.js';
import { embeddingRequest } from '../embeddings.js';
import { responseRequest } from '../responses.js';
import { threadIdSchema } from '../thread-params.js';
import { MAX_SEQ, itemBody, itemPatch, threadBody, threadContextRequest, threadPatch } from '../threads.js';
import { PERIODS, RECORD_ROUTES, RECORD_STATUSES } from '../../usage/report-filter.js';
import { GROUPS } from '../../usage/reports.js';
import type { Resource } from './components.js';

/**
 * Every route the gateway serves, as the OpenAPI document lists it. Request bodies are the very
 * schemas the routes check; query and path parameters are described here (the routes read them by
 * hand, with the bounds written below).
 */
export interface Operation {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** OpenAPI path template. */
  path: string;
  tag: Tag;
  summary: string;
  description?: string;
  /** `key`: a gateway key with the `proxy` scope; `reports`: the admin token or a `reports` key. */
  auth: 'key' | 'reports' | 'admin' | 'none';
  body?: { name: string; schema: z.ZodType; description?: string };
  query?: Record<string, z.ZodType>;
  /** Reads X-Thread-Id, X-Memory and X-Memory-Max-Tokens. */
  thread?: boolean;
  /** Forwarded upstream: rate limits, budgets and upstream errors apply. */
  proxied?: boolean;
  ok: { status: 200 | 201; resource?: Resource; stream?: boolean; csv?: boolean; type?: 'text/html' | 'text/plain' };
}

export const TAGS = {
  'OpenAI-compatible':
    "Forwarded to the upstream (OpenRouter). Every field passes through untouched except the gateway's own; listed here are the fields the gateway reads and checks.",
  'Responses and Conversations':
    'The state the stateless upstream cannot keep: stored responses, `previous_response_id` chains and conversations (threads under another name).',
  Threads: 'Thread memory: stored context in, the exchange out. Workspace-scoped: another workspace never sees a thread (404).',
  Admin: 'Workspaces and keys, behind ADMIN_TOKEN.',
  'Usage reports': 'The usage ledger: the admin token, or a key with the `reports` scope (its own workspace).',
  Operations: 'Liveness, readiness, metrics, and this documentation.',
} as const;
export type Tag = keyof typeof TAGS;

const limit = (max: number, fallback: number, min = 1) => z.int().min(min).max(max).default(fallback);
const order = z.enum(['asc', 'desc']).default('desc').meta({ description: 'Oldest first (`asc`) or newest first (`desc`).' });
const itemCursor = (what: string) => z.string().meta({ description: `An item id: ${what}.` });
const day = (description: string) => z.iso.date().meta({ description });
const list = (values: readonly string[]) => new RegExp(`^(${values.join('|')})(,(${values.join('|')}))*$`);
const reportQuery = {
  from: day('First UTC day, inclusive (default: the first of this month).'),
  to: day('Last UTC day, exclusive (default: tomorrow).'),
  period: z
    .string()
    .regex(new RegExp(`^(${PERIODS.join('|')}|\\d{4}-\\d{2})$`))
    .meta({ description: `Instead of from and to: ${PERIODS.join(', ')}, or a month as YYYY-MM.` }),
  workspace: z.string().meta({ description: 'A workspace name or id.' }),
  key: z.string().meta({ description: 'A key name or id.' }),
  model: z.string().meta({ description: 'The model, exactly.' }),
  format: z.enum(['json', 'csv']).default('json'),
};

const body = (name: string, schema: z.ZodType, description?: string) => ({ name, schema, description });
const chat: Operation = {
  method: 'post',
  path: '/v1/chat/completions',
  tag: 'OpenAI-compatible',
  summary: 'Create a chat completion (stream and non-stream)',
  description:
    "A stream's usage chunk (`choices: []`) comes only when asked for (`stream_options.include_usage`, or OpenRouter's `usage: {include: true}`). With a thread, stored context comes in and the exchange is written back before the answer ends.",
  auth: 'key',
  body: body('ChatCompletionRequest', chatCompletionRequest),
  thread: true,
  proxied: true,
  ok: { status: 200, resource: 'UpstreamReply', stream: true },
};
const responses: Operation = {
  method: 'post',
  path: '/v1/responses',
  tag: 'Responses and Conversations',
  summary: 'Create a response (stream and non-stream)',
  description:
    "Forwarded to the upstream's /responses; `store`, `previous_response_id` and `conversation` are resolved by the gateway (never sent upstream).",
  auth: 'key',
  body: body('ResponseRequest', responseRequest),
  thread: true,
  proxied: true,
  ok: { status: 200, resource: 'UpstreamReply', stream: true },
};

/** The report filters every usage view takes. */
const { format: _format, ...reportFilters } = reportQuery;

/** The two routes a thread-in-path base URL is mostly used for; the whole /v1 API is served there too. */
const inThreadPath = (op: Operation): Operation => ({
  ...op,
  path: `/t/{thread}${op.path}`,
  tag: 'Threads',
  summary: `${op.summary}, the thread in the path`,
  description: `${op.path} with the thread in the base URL (\`OPENAI_BASE_URL=https://gateway/t/support-42/v1\`), for apps that can change nothing else. The whole /v1 API is served under /t/{thread}/v1.`,
});

/** The thread API: under /v1 for a key's workspace, under /admin/workspaces/{workspace} for operators. */
const THREAD_OPERATIONS: Operation[] = [
  {
    method: 'get',
    path: '/v1/threads',
    tag: 'Threads',
    summary: 'List threads',
    auth: 'key',
    query: { limit: limit(100, 20, 0), after: threadIdSchema.meta({ description: 'A thread id: the page starts after it.' }) },
    ok: { status: 200, resource: 'ThreadList' },
  },
  {
    method: 'post',
    path: '/v1/threads',
    tag: 'Threads',
    summary: 'Create a thread',
    auth: 'key',
    body: body('ThreadCreateRequest', threadBody),
    ok: { status: 201, resource: 'Thread' },
  },
  {
    method: 'get',
    path: '/v1/threads/{thread_id}',
    tag: 'Threads',
    summary: 'Retrieve a thread',
    auth: 'key',
    ok: { status: 200, resource: 'Thread' },
  },
  {
    method: 'patch',
    path: '/v1/threads/{thread_id}',
    tag: 'Threads',
    summary: 'Update a thread',
    auth: 'key',
    body: body('ThreadUpdateRequest', threadPatch),
    ok: { status: 200, resource: 'Thread' },
  },
  {
    method: 'delete',
    path: '/v1/threads/{thread_id}',
    tag: 'Threads',
    summary: 'Delete a thread and its items',
    auth: 'key',
    ok: { status: 200, resource: 'ThreadDeleted' },
  },
  {
    method: 'get',
    path: '/v1/threads/{thread_id}/items',
    tag: 'Threads',
    summary: "List a thread's items, oldest first",
    auth: 'key',
    query: {
      limit: limit(1000, 50, 0),
      after: z.int().min(0).max(MAX_SEQ).default(0).meta({ description: 'A `seq`: the page starts after it.' }),
    },
    ok: { status: 200, resource: 'ThreadItemList' },
  },
  {
    method: 'post',
    path: '/v1/threads/{thread_id}/items',
    tag: 'Threads',
    summary: 'Add a message, fact or note (`pinned` items are always injected)',
    auth: 'key',
    body: body('ThreadItemCreateRequest', itemBody),
    ok: { status: 201, resource: 'ThreadItem' },
  },
  {
    method: 'patch',
    path: '/v1/threads/{thread_id}/items/{item_id}',
    tag: 'Threads',
    summary: 'Update an item',
    auth: 'key',
    body: body('ThreadItemUpdateRequest', itemPatch),
    ok: { status: 200, resource: 'ThreadItem' },
  },
  {
    method: 'delete',
    path: '/v1/threads/{thread_id}/items/{item_id}',
    tag: 'Threads',
    summary: 'Delete an item',
    auth: 'key',
    ok: { status: 200, resource: 'ThreadItemDeleted' },
  },
  {
    method: 'post',
    path: '/v1/threads/{thread_id}/context',
    tag: 'Threads',
    summary: 'Dry run: exactly the messages that would be forwarded, with token counts',
    description: 'Nothing is sent upstream or stored. X-Memory-Max-Tokens applies.',
    auth: 'key',
    body: body('ThreadContextRequest', threadContextRequest),
    ok: { status: 200, resource: 'ThreadContext' },
  },
];

/** A thread route for operators, on the workspace named in the path. */
const forOperators = (op: Operation): Operation => ({
  ...op,
  path: op.path.replace(/^\/v1\/threads/, '/admin/workspaces/{workspace}/threads'),
  tag: 'Admin',
  summary: `${op.summary} (an operator, in any workspace)`,
  auth: 'admin',
});

export const OPERATIONS: Operation[] = [
  chat,
  {
    method: 'post',
    path: '/v1/completions',
    tag: 'OpenAI-compatible',
    summary: 'Create a legacy text completion (stream and non-stream)',
    auth: 'key',
    body: body('CompletionRequest', completionRequest),
    proxied: true,
    ok: { status: 200, resource: 'UpstreamReply', stream: true },
  },
  {
    method: 'post',
    path: '/v1/embeddings',
    tag: 'OpenAI-compatible',
    summary: 'Create embeddings',
    auth: 'key',
    body: body('EmbeddingRequest', embeddingRequest),
    proxied: true,
    ok: { status: 200, resource: 'UpstreamReply' },
  },
  {
    method: 'get',
    path: '/v1/models',
    tag: 'OpenAI-compatible',
    summary: 'List models (the upstream catalog, cached, refreshed hourly)',
    auth: 'key',
    ok: { status: 200, resource: 'ModelList' },
  },
  {
    method: 'get',
    path: '/v1/models/{model}',
    tag: 'OpenAI-compatible',
    summary: 'Retrieve a model',
    auth: 'key',
    ok: { status: 200, resource: 'Model' },
  },
  responses,
  {
    method: 'get',
    path: '/v1/responses/{response_id}',
    tag: 'Responses and Conversations',
    summary: 'Retrieve a stored response',
    auth: 'key',
    ok: { status: 200, resource: 'UpstreamReply' },
  },
  {
    method: 'delete',
    path: '/v1/responses/{response_id}',
    tag: 'Responses and Conversations',
    summary: 'Delete a stored response',
    auth: 'key',
    ok: { status: 200, resource: 'ResponseDeleted' },
  },
  {
    method: 'get',
    path: '/v1/responses/{response_id}/input_items',
    tag: 'Responses and Conversations',
    summary: "List a response's input items",
    auth: 'key',
    query: { limit: limit(100, 20), order, after: itemCursor('the page starts after it'), before: itemCursor('the page ends before it') },
    ok: { status: 200, resource: 'ItemList' },
  },
  {
    method: 'post',
    path: '/v1/conversations',
    tag: 'Responses and Conversations',
    summary: 'Create a conversation',
    auth: 'key',
    body: body('ConversationCreateRequest', conversationCreateRequest),
    ok: { status: 200, resource: 'Conversation' },
  },
  {
    method: 'get',
    path: '/v1/conversations/{conversation_id}',
    tag: 'Responses and Conversations',
    summary: 'Retrieve a conversation',
    auth: 'key',
    ok: { status: 200, resource: 'Conversation' },
  },
  {
    method: 'post',
    path: '/v1/conversations/{conversation_id}',
    tag: 'Responses and Conversations',
    summary: "Update a conversation's metadata",
    auth: 'key',
    body: body('ConversationUpdateRequest', conversationUpdateRequest),
    ok: { status: 200, resource: 'Conversation' },
  },
  {
    method: 'delete',
    path: '/v1/conversations/{conversation_id}',
    tag: 'Responses and Conversations',
    summary: 'Delete a conversation (its thread)',
    auth: 'key',
    ok: { status: 200, resource: 'ConversationDeleted' },
  },
  {
    method: 'get',
    path: '/v1/conversations/{conversation_id}/items',
    tag: 'Responses and Conversations',
    summary: "List a conversation's items",
    auth: 'key',
    query: { limit: limit(100, 20), order, after: itemCursor('the page starts after it') },
    ok: { status: 200, resource: 'ItemList' },
  },
  {
    method: 'post',
    path: '/v1/conversations/{conversation_id}/items',
    tag: 'Responses and Conversations',
    summary: 'Add items to a conversation',
    auth: 'key',
    body: body('ConversationItemsRequest', conversationItemsRequest),
    ok: { status: 200, resource: 'ItemList' },
  },
  {
    method: 'get',
    path: '/v1/conversations/{conversation_id}/items/{item_id}',
    tag: 'Responses and Conversations',
    summary: 'Retrieve a conversation item',
    auth: 'key',
    ok: { status: 200 },
  },
  {
    method: 'delete',
    path: '/v1/conversations/{conversation_id}/items/{item_id}',
    tag: 'Responses and Conversations',
    summary: 'Delete a conversation item (answers with the conversation)',
    auth: 'key',
    ok: { status: 200, resource: 'Conversation' },
  },
  ...THREAD_OPERATIONS,
  inThreadPath(chat),
  inThreadPath(responses),
  {
    method: 'get',
    path: '/admin/workspaces',
    tag: 'Admin',
    summary: 'List workspaces',
    auth: 'admin',
    ok: { status: 200, resource: 'WorkspaceList' },
  },
  {
    method: 'post',
    path: '/admin/workspaces',
    tag: 'Admin',
    summary: 'Create a workspace',
    auth: 'admin',
    body: body('WorkspaceCreateRequest', createWorkspaceBody),
    ok: { status: 201, resource: 'Workspace' },
  },
  {
    method: 'get',
    path: '/admin/keys',
    tag: 'Admin',
    summary: 'List keys (with spend and what is left of their budgets)',
    auth: 'admin',
    query: { workspace: z.string().meta({ description: 'A workspace name or id.' }) },
    ok: { status: 200, resource: 'ApiKeyList' },
  },
  {
    method: 'post',
    path: '/admin/keys',
    tag: 'Admin',
    summary: 'Create a key (shown this once)',
    auth: 'admin',
    body: body('KeyCreateRequest', createKeyBody),
    ok: { status: 201, resource: 'ApiKeyCreated' },
  },
  {
    method: 'patch',
    path: '/admin/keys/{key_id}',
    tag: 'Admin',
    summary: "Update a key's name, scopes, limits, budget or expiry",
    auth: 'admin',
    body: body('KeyUpdateRequest', patchKeyBody),
    ok: { status: 200, resource: 'ApiKey' },
  },
  {
    method: 'post',
    path: '/admin/keys/{key_id}/revoke',
    tag: 'Admin',
    summary: 'Revoke a key (refused at once on every instance sharing Redis)',
    auth: 'admin',
    ok: { status: 200, resource: 'ApiKey' },
  },
  {
    method: 'get',
    path: '/admin/usage',
    tag: 'Usage reports',
    summary: 'Usage report: requests, errors, tokens and cost, grouped',
    auth: 'reports',
    query: {
      ...reportQuery,
      group_by: z
        .string()
        .regex(list(GROUPS))
        .default('day')
        .meta({ description: `Comma-separated: any of ${GROUPS.join(', ')}.` }),
    },
    ok: { status: 200, resource: 'UsageReport', csv: true },
  },
  {
    method: 'get',
    path: '/admin/usage/requests',
    tag: 'Usage reports',
    summary: 'Usage records, newest first, paginated',
    auth: 'reports',
    query: {
      ...reportQuery,
      status: z
        .string()
        .regex(list(RECORD_STATUSES))
        .meta({ description: `Comma-separated record statuses: any of ${RECORD_STATUSES.join(', ')}.` }),
      route: z
        .string()
        .regex(list(RECORD_ROUTES))
        .meta({ description: `Comma-separated routes: any of ${RECORD_ROUTES.join(', ')}.` }),
      limit: limit(1000, 100),
      cursor: z.string().meta({ description: '`next_cursor` of the previous page.' }),
    },
    ok: { status: 200, resource: 'UsageRecords', csv: true },
  },
  {
    method: 'get',
    path: '/admin/usage/latency',
    tag: 'Usage reports',
    summary: 'Latency per model: p50/p95 total and time to first byte, over ok requests',
    auth: 'reports',
    query: reportFilters,
    ok: { status: 200 },
  },
  {
    method: 'get',
    path: '/admin/usage/errors',
    tag: 'Usage reports',
    summary: 'Failed requests by status, HTTP status and code',
    auth: 'reports',
    query: reportFilters,
    ok: { status: 200 },
  },
  ...THREAD_OPERATIONS.map(forOperators),
  { method: 'get', path: '/health', tag: 'Operations', summary: 'Liveness', auth: 'none', ok: { status: 200, resource: 'Health' } },
  {
    method: 'get',
    path: '/health/ready',
    tag: 'Operations',
    summary: 'Readiness: database, Redis, upstream catalog, writers (503 when not ready or draining; also /health/detailed)',
    auth: 'none',
    ok: { status: 200, resource: 'Readiness' },
  },
  {
    method: 'get',
    path: '/health/detailed',
    tag: 'Operations',
    summary: 'Readiness (the same as /health/ready)',
    auth: 'none',
    ok: { status: 200, resource: 'Readiness' },
  },
  {
    method: 'get',
    path: '/metrics',
    tag: 'Operations',
    summary: 'Prometheus metrics',
    auth: 'none',
    ok: { status: 200, type: 'text/plain' },
  },
  { method: 'get', path: '/openapi.json', tag: 'Operations', summary: 'This document', auth: 'none', ok: { status: 200 } },
  {
    method: 'get',
    path: '/docs',
    tag: 'Operations',
    summary: 'The API reference as a page',
    auth: 'none',
    ok: { status: 200, type: 'text/html' },
  },
  {
    method: 'get',
    path: '/',
    tag: 'Operations',
    summary: 'Landing: JSON for API clients (name, version, links), a page for browsers (Accept: text/html)',
    auth: 'none',
    ok: { status: 200 },
  },
  {
    method: 'get',
    path: '/dashboard',
    tag: 'Operations',
    summary: 'The console: usage for finance, keys, workspaces, threads and requests for operators (sign-in page without a session)',
    auth: 'none',
    ok: { status: 200, type: 'text/html' },
  },
];
