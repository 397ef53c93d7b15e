import { sql } from 'drizzle-orm';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Database } from '../src/db/client.js';
import { messageTokens } from '../src/memory/context-plan.js';
import { messageHash, type ChatMessage } from '../src/memory/message-hash.js';
import { createThreadStore } from '../src/memory/thread-store.js';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { dbKinds, openTestDatabase } from './helpers/databases.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

// Vector retrieval (MEMORY_EMBEDDING_MODEL): items embedded off the request path through a job
// table, once across instances, their cost on the ledger; a question with no word in common with
// the fact finds it. The fake's `fake/concept-embed` puts related words in one dimension.

const EMBED = { memoryEmbeddingModel: 'fake/concept-embed', memoryEmbeddingDimensions: 32 };
const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: any[] }).rows);
const count = async (database: Database, query: ReturnType<typeof sql>) => Number(rowsOf(await database.db.execute(query))[0].n);

function longThread(): ChatMessage[] {
  const messages: ChatMessage[] = [];
  for (let i = 0; i < 120; i++) {
    const text =
      i === 6 ? "I'm allergic to peanuts, so keep that in mind." : `Turn ${i}: we talked about the weather and the traffic in town today.`;
    messages.push({ role: i % 2 ? 'assistant' : 'user', content: i % 2 ? `Noted: ${text}` : text });
  }
  return messages;
}
const asItems = (messages: ChatMessage[]) =>
  messages.map((m) => ({
    kind: 'message',
    role: m.role,
    content: m.content,
    contentHash: messageHash(m),
    tokens: messageTokens(m),
    status: 'complete',
  }));

/** Polls (bounded) until the job table is empty. */
async function jobsDone(database: Database, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  while ((await count(database, sql`select count(*)::int as n from memory_jobs`)) > 0) {
    if (Date.now() > until) throw new Error('embedding jobs still pending');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each(dbKinds())('vector retrieval on %s', (kind) => {
  let fake: FakeOpenRouter;
  let database: Database;
  let vector: TestGateway;
  let lexical: TestGateway;
  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    database = await openTestDatabase(kind);
    vector = await startTestGateway({ database, upstreamUrl: fake.baseUrl, config: EMBED });
    lexical = await startTestGateway({ database, upstreamUrl: fake.baseUrl });
  });
  afterAll(async () => {
    await vector?.close();
    await lexical?.close();
    await database?.close();
    await fake?.close();
  });

  it('embeds new items in the background, records their cost, and finds a fact no word of the question shares', async () => {
    const k = await vector.createKey();
    const ws = (await vector.deps.keys.getKey(k.id))!.workspaceId;
    const thread = `vec-${kind}-${Date.now()}`;
    await vector.deps.threads.appendItems(ws, thread, asItems(longThread()));
    vector.deps.embedder!.kick();
    await jobsDone(database);
    expect(await count(database, sql`select count(*)::int as n from thread_item_embeddings where thread_id = ${thread}`)).toBe(120);
    const calls = fake.requests.filter((r) => r.path.endsWith('/embeddings'));
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((c) => c.body.model === 'fake/concept-embed' && c.body.dimensions === 32)).toBe(true);
    expect(calls.reduce((n, c) => n + c.body.input.length, 0)).toBe(120);
    // The gateway's own embedding calls are on the ledger, on this workspace.
    await vector.deps.usage.flush(10_000);
    expect(
      await count(
        database,
        sql`select count(*)::int as n from usage_records where key_id = 'gateway:memory-embedding' and workspace_id = ${ws} and status = 'ok'`,
      ),
    ).toBeGreaterThan(0);

    const ask = async (gw: TestGateway) => {
      const client = new OpenAI({
        baseURL: `${gw.url}/t/${thread}/v1`,
        apiKey: k.key,
        maxRetries: 0,
        defaultHeaders: { 'X-Memory-Max-Tokens': '600', 'X-Memory': 'read' },
      });
      await client.chat.completions.create({ model: MODEL, messages: [user('Is there anything I cannot eat?')] });
      return JSON.stringify(fake.requests.filter((r) => r.path.endsWith('/chat/completions')).at(-1)!.body.messages);
    };
    // Lexical retrieval alone cannot find it (no word in common); the vector one does.
    expect(await ask(lexical)).not.toContain('allergic to peanuts');
    const withVectors = await ask(vector);
    expect(withVectors).toContain("(user, earlier) I'm allergic to peanuts");
    expect(withVectors).not.toContain('Turn 10:');

    // PGlite ships pgvector: the search is a database query there; plain Postgres without the
    // extension falls back to the gateway's own comparison. The dry run says which ran.
    const hasExtension =
      rowsOf(await database.db.execute(sql`select exists (select 1 from pg_available_extensions where name = 'vector') as ok`))[0].ok ===
      true;
    if (kind === 'pglite') expect(hasExtension).toBe(true);
    expect(database.vectors).toBe(hasExtension);
    const dry = await fetch(`${vector.url}/v1/threads/${thread}/context`, {
      method: 'POST',
      headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json', 'x-memory-max-tokens': '600' },
      body: JSON.stringify({ model: MODEL, messages: [user('Is there anything I cannot eat?')] }),
    }).then((r) => r.json());
    expect(dry.retrieval).toEqual({ lexical: true, vector: hasExtension ? 'pgvector' : 'in_gateway' });
    expect(JSON.stringify(dry.messages)).toContain("I'm allergic to peanuts");
    if (hasExtension) {
      expect(
        await count(database, sql`select count(*)::int as n from thread_item_embeddings where thread_id = ${thread} and vec is not null`),
      ).toBe(120);
    }
  });

  it('embeddings stored before the database had pgvector get their vector column filled at start, from what is stored', async () => {
    if (!database.vectors) return void expect(database.kind).toBe('postgres'); // nothing to fill without the extension
    const thread = `backfill-${kind}-${Date.now()}`;
    const values = [0.5, -0.25, 1, 0];
    await database.db.execute(sql`
      insert into thread_item_embeddings (item_id, workspace_id, thread_id, seq, model, dims, embedding)
      values (${'item-' + thread}, 'ws-backfill', ${thread}, 1, 'fake/concept-embed', 4, ${Buffer.from(new Float32Array(values).buffer).toString('base64')})`);
    const later = await startTestGateway({ database, upstreamUrl: fake.baseUrl, config: EMBED });
    try {
      await later.deps.embedder!.idle();
      const [row] = rowsOf(await database.db.execute(sql`select vec::text as v from thread_item_embeddings where thread_id = ${thread}`));
      expect(row.v).toBe('[0.5,-0.25,1,0]');
    } finally {
      await later.close();
    }
  });
});

describe('an embedding model the upstream refuses', () => {
  const env = useProxyEnv({ config: { ...EMBED, memoryEmbeddingModel: 'fake/no-such-embedder' } });

  it('keeps the jobs for a later attempt (backed off), records the failures, and requests go on with lexical retrieval', async () => {
    const k = await env.gw.createKey();
    const ws = (await env.gw.deps.keys.getKey(k.id))!.workspaceId;
    const thread = `refused-${Date.now()}`;
    await env.gw.deps.threads.appendItems(ws, thread, asItems(longThread()));
    env.gw.deps.embedder!.kick();
    const until = Date.now() + 10_000;
    while (
      (await count(
        env.database,
        sql`select count(*)::int as n from memory_jobs where attempts >= 1 and claimed_until is null and run_after > now()`,
      )) < 120
    ) {
      if (Date.now() > until) throw new Error('jobs were not backed off');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await count(env.database, sql`select count(*)::int as n from memory_jobs`)).toBe(120); // none lost
    expect(await count(env.database, sql`select count(*)::int as n from thread_item_embeddings`)).toBe(0);
    expect(env.gw.logs.some((l) => l.msg === 'memory embeddings failed; retried later')).toBe(true);
    const client = new OpenAI({
      baseURL: `${env.gw.url}/t/${thread}/v1`,
      apiKey: k.key,
      maxRetries: 0,
      defaultHeaders: { 'X-Memory': 'read' },
    });
    const res = await client.chat.completions.create({ model: MODEL, messages: [user('And the traffic?')] });
    expect(res.choices[0].message.content).toBeTruthy();
    await env.gw.deps.usage.flush(10_000);
    expect(
      await count(
        env.database,
        sql`select count(*)::int as n from usage_records where key_id = 'gateway:memory-embedding' and status = 'upstream_error'`,
      ),
    ).toBeGreaterThan(0);
  });
});

describe.runIf(inject('postgresUrl'))('embedding jobs across instances and restarts', () => {
  let fake: FakeOpenRouter;
  let database: Database;
  const gateways: TestGateway[] = [];
  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    database = await openTestDatabase('postgres');
  });
  afterAll(async () => {
    for (const g of gateways) await g.close();
    await database?.close();
    await fake?.close();
  });

  it('jobs written while no gateway ran are done once, by two instances sharing the queue', async () => {
    const thread = `jobs-${Date.now()}`;
    const ws = `ws_jobs_${Date.now()}`;
    // Written with the items, in their transaction: no process has to be alive for them to persist.
    await createThreadStore(database.db, { embed: true }).appendItems(ws, thread, asItems(longThread()));
    expect(await count(database, sql`select count(*)::int as n from memory_jobs where thread_id = ${thread}`)).toBe(120);
    gateways.push(await startTestGateway({ database, upstreamUrl: fake.baseUrl, config: EMBED }));
    gateways.push(await startTestGateway({ database, upstreamUrl: fake.baseUrl, config: EMBED }));
    for (const g of gateways) g.deps.embedder!.kick();
    await jobsDone(database);
    expect(await count(database, sql`select count(*)::int as n from thread_item_embeddings where thread_id = ${thread}`)).toBe(120);
    // Each item went to the upstream once, whichever instance took it.
    const inputs = fake.requests.filter((r) => r.path.endsWith('/embeddings')).reduce((n, c) => n + c.body.input.length, 0);
    expect(inputs).toBe(120);
  });

  it('a job whose instance died mid-batch (its claim expired) is taken up again', async () => {
    const thread = `expired-${Date.now()}`;
    const ws = `ws_expired_${Date.now()}`;
    await createThreadStore(database.db, { embed: true }).appendItems(ws, thread, asItems(longThread().slice(0, 4)));
    // As a crashed instance leaves them: claimed, attempted once, the claim run out.
    await database.db.execute(
      sql`update memory_jobs set claimed_until = now() - interval '1 second', attempts = 1 where thread_id = ${thread}`,
    );
    gateways[0].deps.embedder!.kick();
    await jobsDone(database);
    expect(await count(database, sql`select count(*)::int as n from thread_item_embeddings where thread_id = ${thread}`)).toBe(4);
  });
});
