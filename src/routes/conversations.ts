import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { GatewayError } from '../errors.js';
import type { ThreadRow } from '../memory/thread-store.js';
import { inputItems, presentItem } from '../responses/items.js';
import { responseItemsOfRow, type ResponseStore } from '../responses/response-store.js';
import type { AppContext, AppDeps, AppEnv } from './context.js';
import { readJsonObject } from './read-json.js';
import { checkThreadId } from './thread-params.js';

/** OpenAI's limit on items added in one call. */
const MAX_ADDED = 20;

const presentConversation = (t: ThreadRow) => ({
  id: t.id,
  object: 'conversation',
  created_at: Math.floor(t.createdAt.getTime() / 1000),
  metadata: t.metadata ?? {},
});

/** Metadata as OpenAI takes it: up to 16 string values. */
function metadataOf(value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new GatewayError('invalid_value', "Invalid value for 'metadata': expected an object of strings.", { param: 'metadata' });
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > 16 || !entries.every(([k, v]) => typeof v === 'string' && k.length <= 64 && v.length <= 512)) {
    throw new GatewayError('invalid_value', "Invalid value for 'metadata': at most 16 string values (keys up to 64 characters, values up to 512).", { param: 'metadata' });
  }
  return value as Record<string, string>;
}

function addedItems(value: unknown): Record<string, any>[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new GatewayError('invalid_value', "Invalid value for 'items': expected an array of items.", { param: 'items' });
  if (value.length > MAX_ADDED) throw new GatewayError('invalid_value', `Invalid value for 'items': at most ${MAX_ADDED} items at a time.`, { param: 'items' });
  return inputItems(value);
}

/**
 * `/v1/conversations`: OpenAI's Conversations API over thread memory. A conversation is a thread
 * (`conv_…` when the gateway names it; any thread of the workspace can be used as one), so it is
 * in the thread API too, works in X-Thread-Id and /t/{id}/v1, and a response naming it reads it and
 * appends its turn.
 */
export function conversationRoutes(deps: AppDeps, store: ResponseStore) {
  const api = new Hono<AppEnv>();
  const ws = (c: AppContext) => c.get('caller').workspaceId;
  const conversation = async (c: AppContext) => {
    const id = checkThreadId(c.req.param('id')!, 'conversation_id');
    const t = await deps.threads.getThread(ws(c), id);
    if (!t) throw new GatewayError('not_found', `Conversation with id '${id}' not found.`, { param: 'conversation_id' });
    return t;
  };

  api.post('/', async (c) => {
    const { body } = await readJsonObject(c, deps.config.maxBodyBytes);
    const metadata = metadataOf(body.metadata);
    const items = addedItems(body.items);
    const id = `conv_${randomBytes(24).toString('hex')}`;
    const t = await deps.threads.ensureThread(ws(c), id, { metadata: metadata ?? null });
    if (items.length) await store.appendItems(ws(c), id, items);
    return c.json(presentConversation(t!));
  });

  api.get('/:id', async (c) => c.json(presentConversation(await conversation(c))));

  api.post('/:id', async (c) => {
    const t = await conversation(c);
    const { body } = await readJsonObject(c, deps.config.maxBodyBytes);
    const metadata = metadataOf(body.metadata);
    if (metadata === undefined) throw new GatewayError('missing_required_parameter', "Missing required parameter: 'metadata'.", { param: 'metadata' });
    return c.json(presentConversation((await deps.threads.updateThread(ws(c), t.id, { metadata }))!));
  });

  api.delete('/:id', async (c) => {
    const t = await conversation(c);
    await deps.threads.deleteThread(ws(c), t.id);
    return c.json({ id: t.id, object: 'conversation.deleted', deleted: true });
  });

  /** Items, newest first by default (OpenAI's order), `limit` 1-100, `after` an item id. */
  api.get('/:id/items', async (c) => {
    const t = await conversation(c);
    const limitText = c.req.query('limit');
    const limit = limitText === undefined ? 20 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new GatewayError('invalid_value', "Invalid value for 'limit': expected an integer from 1 to 100.", { param: 'limit' });
    const order = c.req.query('order') ?? 'desc';
    if (order !== 'asc' && order !== 'desc') throw new GatewayError('invalid_value', "Invalid value for 'order': expected 'asc' or 'desc'.", { param: 'order' });
    let items = (await store.threadHistory(ws(c), t.id)).map(({ id, item }) => presentItem(id, item));
    if (order === 'desc') items.reverse();
    const after = c.req.query('after');
    if (after !== undefined) {
      const at = items.findIndex((i) => i.id === after);
      if (at === -1) throw new GatewayError('invalid_value', "Invalid value for 'after': no such item in this conversation.", { param: 'after' });
      items = items.slice(at + 1);
    }
    const page = items.slice(0, limit);
    return c.json({ object: 'list', data: page, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: items.length > limit });
  });

  api.post('/:id/items', async (c) => {
    const t = await conversation(c);
    const { body } = await readJsonObject(c, deps.config.maxBodyBytes);
    const items = addedItems(body.items);
    if (items.length === 0) throw new GatewayError('missing_required_parameter', "Missing required parameter: 'items'.", { param: 'items' });
    const rows = await store.appendItems(ws(c), t.id, items);
    const data = rows.flatMap((row) => responseItemsOfRow(row).map((item) => presentItem(row.id, item)));
    return c.json({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: false });
  });

  api.get('/:id/items/:itemId', async (c) => {
    const t = await conversation(c);
    const row = await deps.threads.findItem(ws(c), t.id, c.req.param('itemId'));
    if (!row) throw new GatewayError('not_found', `Item with id '${c.req.param('itemId')}' not found.`, { param: 'item_id' });
    const [item] = responseItemsOfRow(row);
    return c.json(presentItem(row.id, item ?? {}));
  });

  /** Deletes an item; answers with the conversation, as OpenAI does. */
  api.delete('/:id/items/:itemId', async (c) => {
    const t = await conversation(c);
    const row = await deps.threads.findItem(ws(c), t.id, c.req.param('itemId'));
    if (!row || !(await deps.threads.deleteItem(ws(c), t.id, row.id))) {
      throw new GatewayError('not_found', `Item with id '${c.req.param('itemId')}' not found.`, { param: 'item_id' });
    }
    return c.json(presentConversation((await deps.threads.getThread(ws(c), t.id)) ?? t));
  });

  return api;
}
