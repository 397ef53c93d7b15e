import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { checkBody, field, invalid, jsonSchemaOf, missing, type FieldError } from './body-schema.js';
import { badItem, inputItem } from './responses.js';
import type { ThreadRow } from '../memory/thread-store.js';
import { inputItems, presentItem } from '../responses/items.js';
import { responseItemsOfRow, type ResponseStore } from '../responses/response-store.js';
import type { AppContext, AppDeps, AppEnv } from './context.js';
import { readJsonObject } from './read-json.js';
import { itemListPage } from './item-list.js';
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
const isMetadata = (v: unknown) =>
  !!v &&
  typeof v === 'object' &&
  !Array.isArray(v) &&
  Object.keys(v).length <= 16 &&
  Object.entries(v).every(([k, s]) => typeof s === 'string' && k.length <= 64 && s.length <= 512);
// zod's record skips a `__proto__` key (it would set its parsed copy's prototype), which the
// gateway keeps like any other: so the value itself is checked, and documented by the record.
const metadata = z
  .unknown()
  .refine(isMetadata)
  .meta(
    jsonSchemaOf(
      z
        .record(z.string().max(64), z.string().max(512))
        .meta({ maxProperties: 16, description: 'Up to 16 string values (keys up to 64 characters, values up to 512).' }),
    ),
  );
const metadataError: FieldError = (v) =>
  v === undefined || v === null
    ? missing('metadata')
    : typeof v !== 'object' || Array.isArray(v)
      ? invalid('metadata', 'expected an object of strings')
      : invalid('metadata', 'at most 16 string values (keys up to 64 characters, values up to 512)');

const itemsError: FieldError = (v) =>
  v === undefined || v === null || (Array.isArray(v) && v.length === 0)
    ? missing('items')
    : !Array.isArray(v)
      ? invalid('items', 'expected an array of items')
      : v.length > MAX_ADDED
        ? invalid('items', `at most ${MAX_ADDED} items at a time`)
        : badItem(v);
const items = z
  .array(inputItem)
  .max(MAX_ADDED)
  .meta({ description: `Items to add (at most ${MAX_ADDED}), in the Responses API's input item form.` });

/** `POST /v1/conversations`. */
export const conversationCreateRequest = z.object({
  metadata: field(metadata.nullish(), metadataError),
  items: field(items.nullish(), itemsError),
});
/** `POST /v1/conversations/{id}`: new metadata. */
export const conversationUpdateRequest = z.object({ metadata: field(metadata, metadataError) });
/** `POST /v1/conversations/{id}/items`. */
export const conversationItemsRequest = z.object({ items: field(items.min(1), itemsError) });

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
    checkBody(conversationCreateRequest, body);
    const items = body.items ? inputItems(body.items) : [];
    const metadata = body.metadata ?? undefined;
    const id = `conv_${randomBytes(24).toString('hex')}`;
    const t = await deps.threads.ensureThread(ws(c), id, { metadata: metadata ?? null });
    if (items.length) await store.appendItems(ws(c), id, items);
    return c.json(presentConversation(t));
  });

  api.get('/:id', async (c) => c.json(presentConversation(await conversation(c))));

  api.post('/:id', async (c) => {
    const t = await conversation(c);
    const { body } = await readJsonObject(c, deps.config.maxBodyBytes);
    checkBody(conversationUpdateRequest, body);
    const metadata = body.metadata as Record<string, string>;
    return c.json(presentConversation(await deps.threads.updateThread(ws(c), t.id, { metadata })));
  });

  api.delete('/:id', async (c) => {
    const t = await conversation(c);
    await deps.threads.deleteThread(ws(c), t.id);
    return c.json({ id: t.id, object: 'conversation.deleted', deleted: true });
  });

  /** Items, newest first by default (OpenAI's order), `limit` 1-100, `after` an item id. */
  api.get('/:id/items', async (c) => {
    const t = await conversation(c);
    const items = (await store.threadHistory(ws(c), t.id)).map(({ id, item }) => presentItem(id, item));
    return c.json(itemListPage(c, items, 'conversation', ['after']));
  });

  api.post('/:id/items', async (c) => {
    const t = await conversation(c);
    const { body } = await readJsonObject(c, deps.config.maxBodyBytes);
    checkBody(conversationItemsRequest, body);
    const items = inputItems(body.items);
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
