import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/client.js';
import { createThreadStore, type NewItem } from '../src/memory/thread-store.js';
import { dbKinds, openTestDatabase } from './helpers/databases.js';

const msg = (role: string, content: string, i: number): NewItem => ({
  kind: 'message',
  role,
  content,
  contentHash: `h${i}-${content}`,
  tokens: 5,
  status: 'complete',
});

describe.each(dbKinds())('cached thread history stays correct across instances (%s)', (kind) => {
  let database: Database;
  beforeAll(async () => {
    database = await openTestDatabase(kind);
  });
  afterAll(() => database.close());

  it("sees another instance's writes, edits and a re-created thread", async () => {
    const a = createThreadStore(database.db);
    const b = createThreadStore(database.db);
    const t = `cache-${Date.now()}`;
    await a.appendItems('ws1', t, [msg('user', 'one', 1), msg('assistant', 'two', 2)]);
    expect((await a.loadView('ws1', t)).recent.map((r) => r.content)).toEqual(['one', 'two']);
    // Written by this instance: its cache follows (write-through), superseded items leave it.
    await a.appendItems('ws1', t, [msg('assistant', 'two again', 3)], [2]);
    expect((await a.loadView('ws1', t)).recent.map((r) => r.content)).toEqual(['one', 'two again']);
    // Written by the other instance: a's cached copy is stale and must not be used.
    await b.appendItems('ws1', t, [msg('user', 'three', 4)]);
    expect((await a.loadView('ws1', t)).recent.map((r) => r.content)).toEqual(['one', 'two again', 'three']);
    // Edited and deleted through the other instance.
    const items = await b.listItems('ws1', t, 10, 0);
    await b.updateItem('ws1', t, items[0].id, { content: 'ONE' });
    expect((await a.loadView('ws1', t)).recent[0].content).toBe('ONE');
    await b.deleteItem('ws1', t, items.at(-1)!.id);
    expect((await a.loadView('ws1', t)).recent.map((r) => r.content)).toEqual(['ONE', 'two again']);
    // Pinned items follow too: added here (write-through), unpinned there.
    const [fact] = await a.appendItems('ws1', t, [
      { kind: 'fact', role: 'system', content: 'likes tea', contentHash: 'f1', tokens: 4, status: 'complete', pinned: true },
    ]);
    expect((await a.loadView('ws1', t)).pinned.map((p) => p.content)).toEqual(['likes tea']);
    await b.updateItem('ws1', t, fact.id, { pinned: false });
    expect((await a.loadView('ws1', t)).pinned).toEqual([]);
    // Deleted and re-created with the same id: versions start again, the cache must not mix them up.
    await b.deleteThread('ws1', t);
    await b.appendItems('ws1', t, [msg('user', 'fresh', 5), msg('assistant', 'start', 6)]);
    expect((await a.loadView('ws1', t)).recent.map((r) => r.content)).toEqual(['fresh', 'start']);
    // Another workspace's thread of the same id is a different thread.
    expect((await a.loadView('ws2', t)).recent).toEqual([]);
  });
});
