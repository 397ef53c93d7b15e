import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { CHAT_MESSAGE_DOC, checkBody, field, jsonArray, missing } from './body-schema.js';
import { messageTokens, storableMessage } from '../memory/context-plan.js';
import { messageHash } from '../memory/message-hash.js';
import type { ItemRow, ThreadRow } from '../memory/thread-store.js';
import type { AppContext, AppDeps, AppEnv } from './context.js';
import { readJsonObject } from './read-json.js';
import { checkThreadId } from './thread-params.js';

const presentThread = (t: ThreadRow) => ({
  id: t.id,
  object: 'thread',
  title: t.title,
  metadata: t.metadata ?? {},
  summary: t.summary,
  summary_upto_seq: t.summaryUptoSeq,
  created_at: t.createdAt.toISOString(),
  updated_at: t.updatedAt.toISOString(),
});

const presentItem = (i: ItemRow) => ({
  id: i.id,
  object: 'thread.item',
  seq: i.seq,
  kind: i.kind,
  role: i.role,
  content: i.content,
  tool_calls: i.toolCalls ?? undefined,
  tool_call_id: i.toolCallId ?? undefined,
  name: i.name ?? undefined,
  pinned: i.pinned,
  status: i.status,
  tokens: i.tokens,
  model: i.model ?? undefined,
  usage: i.usage ?? undefined,
  created_at: i.createdAt.toISOString(),
});

const metadata = z.record(z.string(), z.unknown()).nullable().optional();
export const threadBody = z.object({ id: z.string().optional(), title: z.string().max(500).nullable().optional(), metadata }).strict();
export const threadPatch = z.object({ title: z.string().max(500).nullable().optional(), metadata }).strict();
const content = z.union([z.string(), z.array(z.record(z.string(), z.unknown()))]);
export const itemBody = z
  .object({
    kind: z.enum(['message', 'fact', 'note']).default('message'),
    role: z.enum(['user', 'assistant', 'system', 'tool']).optional(),
    content,
    pinned: z.boolean().optional(),
  })
  .strict();
export const itemPatch = z
  .object({ content: content.optional(), pinned: z.boolean().optional(), status: z.enum(['complete', 'superseded']).optional() })
  .strict();

/** The dry run's body: what a chat completion on the thread would send (other fields are read as a request's). */
export const threadContextRequest = z.object({
  model: field(z.string().min(1).meta({ description: 'The model the request would go to (its context window sets the budget).' }), () =>
    missing('model'),
  ),
  messages: field(jsonArray({ items: CHAT_MESSAGE_DOC, description: "The request's own messages." }), () => missing('messages')),
});

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue.code === 'unrecognized_keys' ? issue.keys[0] : issue.path.join('.');
  throw new GatewayError(
    'invalid_value',
    issue.code === 'unrecognized_keys' ? `Unknown field(s): ${issue.keys.join(', ')}` : `${param}: ${issue.message}`,
    { param },
  );
}

function intQuery(c: AppContext, name: string, fallback: number, max: number): number {
  const raw = c.req.query(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > max)
    throw new GatewayError('invalid_value', `${name} must be a whole number up to ${max}.`, { param: name });
  return n;
}

/** Item `seq` is a Postgres integer: a larger `after` would fail in the database, not be an empty page. */
export const MAX_SEQ = 2_147_483_647;

const notFound = () => new GatewayError('not_found', 'No such thread.');

/** The thread API (`/v1/threads…`), scoped to the caller's workspace: others' threads are 404. */
export function threadRoutes(deps: AppDeps) {
  const api = new Hono<AppEnv>();
  const ws = (c: AppContext) => c.get('caller').workspaceId;
  const redact = { emails: deps.config.memoryRedactEmails };

  async function thread(c: AppContext): Promise<ThreadRow> {
    const id = checkThreadId(c.req.param('id') ?? '', 'thread_id');
    const row = await deps.threads.getThread(ws(c), id);
    if (!row) throw notFound();
    return row;
  }

  api.get('/', async (c) => {
    const limit = intQuery(c, 'limit', 20, 100);
    const rows = await deps.threads.listThreads(ws(c), limit + 1, c.req.query('after') || undefined);
    return c.json({ object: 'list', data: rows.slice(0, limit).map(presentThread), has_more: rows.length > limit });
  });

  api.post('/', async (c) => {
    const body = parse(threadBody, (await readJsonObject(c, 64 * 1024)).body);
    const id = body.id ? checkThreadId(body.id, 'id') : `thr_${randomBytes(12).toString('base64url')}`;
    if (await deps.threads.getThread(ws(c), id)) throw new GatewayError('conflict', `Thread "${id}" already exists.`, { param: 'id' });
    const row = await deps.threads.ensureThread(ws(c), id, { title: body.title, metadata: body.metadata });
    return c.json(presentThread(row), 201);
  });

  api.get('/:id', async (c) => c.json(presentThread(await thread(c))));

  api.patch('/:id', async (c) => {
    const t = await thread(c);
    const body = parse(threadPatch, (await readJsonObject(c, 64 * 1024)).body);
    return c.json(presentThread(await deps.threads.updateThread(ws(c), t.id, body)));
  });

  api.delete('/:id', async (c) => {
    const t = await thread(c);
    await deps.threads.deleteThread(ws(c), t.id);
    return c.json({ id: t.id, object: 'thread.deleted', deleted: true });
  });

  api.get('/:id/items', async (c) => {
    const t = await thread(c);
    const limit = intQuery(c, 'limit', 50, 1000);
    const after = intQuery(c, 'after', 0, MAX_SEQ);
    const rows = await deps.threads.listItems(ws(c), t.id, limit + 1, after);
    const data = rows.slice(0, limit).map(presentItem);
    return c.json({ object: 'list', data, has_more: rows.length > limit, last_seq: data.at(-1)?.seq ?? null });
  });

  api.post('/:id/items', async (c) => {
    const t = await thread(c);
    const body = parse(itemBody, (await readJsonObject(c, deps.config.maxBodyBytes)).body);
    const role = body.kind === 'message' ? (body.role ?? 'user') : 'system';
    const message = storableMessage({ role, content: body.content }, redact, deps.config.memoryMaxInlineBytes);
    const [row] = await deps.threads.appendItems(ws(c), t.id, [
      {
        kind: body.kind,
        role,
        content: message.content,
        contentHash: messageHash(message),
        tokens: messageTokens(message),
        pinned: body.pinned ?? body.kind !== 'message',
        status: 'complete',
      },
    ]);
    return c.json(presentItem(row), 201);
  });

  api.patch('/:id/items/:itemId', async (c) => {
    const t = await thread(c);
    const existing = await deps.threads.getItem(ws(c), t.id, c.req.param('itemId'));
    if (!existing) throw new GatewayError('not_found', 'No such item.');
    const body = parse(itemPatch, (await readJsonObject(c, deps.config.maxBodyBytes)).body);
    const set: Parameters<typeof deps.threads.updateItem>[3] = { pinned: body.pinned, status: body.status };
    if (body.content !== undefined) {
      const message = storableMessage({ role: existing.role ?? 'user', content: body.content }, redact, deps.config.memoryMaxInlineBytes);
      Object.assign(set, { content: message.content, contentHash: messageHash(message), tokens: messageTokens(message) });
    }
    return c.json(presentItem(await deps.threads.updateItem(ws(c), t.id, existing.id, set)));
  });

  api.delete('/:id/items/:itemId', async (c) => {
    const t = await thread(c);
    if (!(await deps.threads.deleteItem(ws(c), t.id, c.req.param('itemId')))) throw new GatewayError('not_found', 'No such item.');
    return c.json({ id: c.req.param('itemId'), object: 'thread.item.deleted', deleted: true });
  });

  /** Dry run: exactly the messages that would be forwarded, with token counts; nothing sent or stored. */
  api.post('/:id/context', async (c) => {
    const t = await thread(c);
    const { body } = await readJsonObject(c, deps.config.maxBodyBytes);
    checkBody(threadContextRequest, body);
    const maxHeader = c.req.header('x-memory-max-tokens');
    // The very function a real request on this thread goes through (retrieval and all).
    const plan = await deps.memory.plan({
      workspaceId: ws(c),
      threadId: t.id,
      body,
      inject: true,
      maxTokens: maxHeader && /^\d+$/.test(maxHeader) ? Number(maxHeader) : undefined,
    });
    return c.json({
      object: 'thread.context',
      thread_id: t.id,
      model: body.model,
      messages: plan.messages,
      tokens: { memory: plan.memoryTokens, budget: plan.budget, prompt: plan.promptTokens, split: plan.split },
      injected_items: plan.injectedCount,
      retrieved_items: plan.retrievedCount,
      retrieval: deps.memory.retrieval,
      alignment: plan.mode,
    });
  });

  return api;
}
