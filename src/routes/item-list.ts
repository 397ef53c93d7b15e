import { GatewayError } from '../errors.js';
import type { ResponseItem } from '../responses/items.js';
import type { AppContext } from './context.js';

/**
 * One page of items as OpenAI lists them (`{object: "list", data, first_id, last_id, has_more}`):
 * `limit` 1-100 (default 20), `order` asc or desc (default desc, newest first), and the cursors
 * given (`after`, and `before` where the route takes it) naming an item of `items` (oldest first).
 */
export function itemListPage(c: AppContext, items: ResponseItem[], where: string, cursors: readonly ('after' | 'before')[]) {
  const limitText = c.req.query('limit');
  const limit = limitText === undefined ? 20 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new GatewayError('invalid_value', "Invalid value for 'limit': expected an integer from 1 to 100.", { param: 'limit' });
  }
  const order = c.req.query('order') ?? 'desc';
  if (order !== 'asc' && order !== 'desc')
    throw new GatewayError('invalid_value', "Invalid value for 'order': expected 'asc' or 'desc'.", { param: 'order' });
  let list = order === 'desc' ? [...items].reverse() : items;
  for (const param of cursors) {
    const cursor = c.req.query(param);
    if (cursor === undefined) continue;
    const at = list.findIndex((i) => i.id === cursor);
    if (at === -1) throw new GatewayError('invalid_value', `Invalid value for '${param}': no such item in this ${where}.`, { param });
    list = param === 'after' ? list.slice(at + 1) : list.slice(0, at);
  }
  const page = list.slice(0, limit);
  return { object: 'list', data: page, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: list.length > limit };
}
