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

  it("lexical retrieval's index of a span follows another instance's appends, edits, supersedes and a re-created thread", async () => {
    const a = createThreadStore(database.db);
    const b = createThreadStore(database.db);
    const t = `span-${Date.now()}`;
    const filler = (i: number) => msg(i % 2 ? 'assistant' : 'user', `turn ${i}: the weather and the traffic in town`, i);
    const seqsOf = (hits: { seq: number }[]) => hits.map((h) => h.seq);
    const first = Array.from({ length: 40 }, (_, i) => (i === 5 ? msg('user', 'the blue kettle is in the garage', i) : filler(i)));
    await a.appendItems('ws1', t, first);
    expect(seqsOf(await a.searchItems('ws1', t, 'Where is the kettle?', 41, 5))).toEqual([6]);
    expect(seqsOf(await a.searchItems('ws1', t, 'Where is the kettle?', 6, 5))).toEqual([]); // below the seq asked for only

    // Appended on the other instance; they enter a's span as it moves up.
    await b.appendItems('ws1', t, [filler(40), msg('user', 'the red umbrella hangs in the attic', 41), filler(42)]);
    expect(seqsOf(await a.searchItems('ws1', t, 'umbrella', 44, 5))).toEqual([42]);
    expect(seqsOf(await a.searchItems('ws1', t, 'kettle umbrella', 44, 5)).sort()).toEqual([42, 6]);

    // Edited there: the old words no longer find it here, the new ones do.
    const kettle = (await b.listItems('ws1', t, 10, 0)).find((i) => i.seq === 6)!;
    await b.updateItem('ws1', t, kettle.id, { content: 'we threw the kettle away' });
    expect(seqsOf(await a.searchItems('ws1', t, 'garage', 44, 5))).toEqual([]);
    expect(seqsOf(await a.searchItems('ws1', t, 'threw', 44, 5))).toEqual([6]);

    // Superseded there (a branch), then here: neither instance finds those any more.
    await b.appendItems('ws1', t, [msg('user', 'an edited turn about lunch', 43)], [42]);
    expect(seqsOf(await a.searchItems('ws1', t, 'umbrella', 45, 5))).toEqual([]);
    expect(seqsOf(await a.searchItems('ws1', t, 'lunch', 45, 5))).toEqual([44]);
    await a.appendItems('ws1', t, [msg('user', 'a second edit about dinner', 44)], [44]);
    expect(seqsOf(await b.searchItems('ws1', t, 'lunch dinner', 46, 5))).toEqual([45]);
    expect(seqsOf(await a.searchItems('ws1', t, 'lunch dinner', 46, 5))).toEqual([45]);

    // Deleted there, one item; then the whole thread, re-created with other words at the same seqs.
    const dinner = (await b.listItems('ws1', t, 100, 0)).find((i) => i.seq === 45)!;
    await b.deleteItem('ws1', t, dinner.id);
    expect(seqsOf(await a.searchItems('ws1', t, 'dinner', 46, 5))).toEqual([]);
    await b.deleteThread('ws1', t);
    await b.appendItems('ws1', t, [msg('user', 'the green kettle is new', 50), filler(51)]);
    expect(seqsOf(await a.searchItems('ws1', t, 'kettle threw', 3, 5))).toEqual([1]);
    expect(seqsOf(await a.searchItems('ws1', t, 'weather', 46, 5))).toEqual([2]);
    // Requests at once, on a fresh instance, agree; another workspace's thread of the same id finds nothing.
    const c = createThreadStore(database.db);
    const together = await Promise.all([1, 2, 3].map(() => c.searchItems('ws1', t, 'green kettle', 3, 5)));
    expect(together.map(seqsOf)).toEqual([[1], [1], [1]]);
    expect(await c.searchItems('ws2', t, 'green kettle', 3, 5)).toEqual([]);
    // No room for indexes (MEMORY_INDEX_CACHE_MB=0), or room for one thread of two: each request
    // reads what it lacks and ranks the same.
    const other = `${t}-other`;
    await a.appendItems('ws1', other, [msg('user', 'a kettle of fish', 60), msg('user', 'green tea', 61)]);
    const sizes = await Promise.all(
      [t, other].map(async (thread) => {
        const probe = createThreadStore(database.db);
        await probe.searchItems('ws1', thread, 'kettle', 3, 5);
        return probe.indexStats().bytes;
      }),
    );
    const cap = Math.max(...sizes) + 10;
    expect(cap).toBeLessThan(sizes[0] + sizes[1]);
    const none = createThreadStore(database.db, { indexCacheBytes: 0 });
    const one = createThreadStore(database.db, { indexCacheBytes: cap });
    for (let round = 0; round < 2; round++) {
      for (const store of [none, one]) {
        expect(seqsOf(await store.searchItems('ws1', t, 'green kettle', 3, 5))).toEqual([1]);
        expect(seqsOf(await store.searchItems('ws1', other, 'green kettle', 3, 5))).toEqual([2, 1]);
      }
    }
    expect(none.indexStats()).toEqual({ threads: 0, bytes: 0, summed: 0 });
    expect(one.indexStats().threads).toBe(1);
    expect(one.indexStats().bytes).toBeLessThanOrEqual(cap);
    // Many requests at once while the threads grow: the count of what is held stays exact.
    await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => c.searchItems('ws1', i % 2 ? t : other, 'green kettle tea', 3 + i, 5)),
      a.appendItems('ws1', t, [msg('user', 'more green tea', 70)]),
      a.appendItems('ws1', other, [msg('user', 'a green kettle again', 71)], [1]),
    ]);
    // Rows by seq (vector retrieval's hits) come from the index where it holds them, as the database has them.
    const fromDb = await createThreadStore(database.db).historyRows('ws1', t, [1, 2, 3, 999]);
    const viaIndex = await c.historyRows('ws1', t, [1, 2, 3, 999]);
    const bySeq = (rows: { seq: number }[]) => [...rows].sort((x, y) => x.seq - y.seq);
    expect(fromDb.map((r) => r.seq).sort()).toEqual([1, 2, 3]);
    expect(bySeq(viaIndex)).toEqual(bySeq(fromDb));
    const stats = c.indexStats();
    expect(stats.threads).toBe(2);
    expect(stats.bytes).toBe(stats.summed);
  });
});
