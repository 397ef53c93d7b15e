import { describe, expect, it } from 'vitest';
import { generateKey } from '../src/keys/key-material.js';
import { createThreadStore } from '../src/memory/thread-store.js';
import { ADMIN_TOKEN, eventually } from './helpers/gateway.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

/**
 * Promises of the README that a one-line change could break while every other test passed
 * (issue 12's mutation pass): each test here fails under such a change.
 */
const env = useProxyEnv();

const SMALL = 'fake/small-600'; // 600-token window, 200 max completion tokens (test/fake-openrouter/catalog.ts)
const onThread = (thread: string, key = env.key) => ({ headers: { 'x-thread-id': thread, authorization: `Bearer ${key}` } });
const chat = async (body: Record<string, unknown>, thread: string, key = env.key) => {
  const res = await env.post('/v1/chat/completions', { model: MODEL, ...body }, onThread(thread, key));
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
};
const lastForwarded = () =>
  env.fake.requests.filter((r) => r.path.endsWith('/chat/completions')).at(-1)!.body.messages as { role: string; content: unknown }[];
const contents = (messages: { content: unknown }[]) => messages.map((m) => String(m.content));
const unique = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

describe('keys: the whole key authenticates, never its display prefix', () => {
  it('a key sharing only the 10-character prefix of a real key gets 401', async () => {
    const { key } = await env.gw.createKey();
    const send = (k: string) => fetch(`${env.gw.url}/v1/models`, { headers: { authorization: `Bearer ${k}` } });
    expect((await send(key)).status).toBe(200); // the real key works (and is now in the key cache)
    const twin = key.slice(0, 10) + generateKey().slice(10);
    expect(twin).toHaveLength(key.length);
    const res = await send(twin);
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe('invalid_api_key');
    // One character off at the very end is just as wrong.
    const last = key.at(-1) === 'A' ? 'B' : 'A';
    expect((await send(key.slice(0, -1) + last)).status).toBe(401);
    // The proxy route too, where a mistake would cost money.
    const proxied = await fetch(`${env.gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${twin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [user('hi')] }),
    });
    expect(proxied.status).toBe(401);
  });
});

describe("workspaces: another workspace's thread of the same id stays invisible", () => {
  /** Workspace A writes a secret and a pinned fact into `thread`; workspace B then uses the same id. */
  async function twoWorkspaces(thread: string) {
    expect((await chat({ messages: [user('The vault code is AZURE-CAT-7.')] }, thread)).status).toBe(200);
    const pin = await env.post(`/v1/threads/${thread}/items`, { kind: 'fact', content: 'Workspace A prefers PAPAYA.' });
    expect(pin.status).toBe(201);
    const b = await env.gw.createKey();
    expect((await chat({ messages: [user('hello from B')] }, thread, b.key)).status).toBe(200);
    return b;
  }
  const leaked = (messages: { content: unknown }[]) => contents(messages).filter((c) => /AZURE|PAPAYA/.test(c));

  it("in forwarded requests: B's request injects B's history only", async () => {
    const thread = unique('shared');
    const b = await twoWorkspaces(thread);
    expect((await chat({ messages: [user('what is the vault code?')] }, thread, b.key)).status).toBe(200);
    const sent = lastForwarded();
    expect(leaked(sent)).toEqual([]);
    expect(contents(sent)).toEqual(['hello from B', 'You said: hello from B', 'what is the vault code?']);
    // A's own view is intact (the store was not simply emptied).
    expect((await chat({ messages: [user('again')] }, thread)).status).toBe(200);
    expect(contents(lastForwarded()).some((c) => c.includes('AZURE-CAT-7'))).toBe(true);
  });

  it("in the dry run: POST /v1/threads/{id}/context shows B nothing of A's", async () => {
    const thread = unique('shared-dry');
    const b = await twoWorkspaces(thread);
    const res = await fetch(`${env.gw.url}/v1/threads/${thread}/context`, {
      method: 'POST',
      headers: { authorization: `Bearer ${b.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [user('what is the vault code?')] }),
    });
    expect(res.status).toBe(200);
    const dry = await res.json();
    expect(leaked(dry.messages)).toEqual([]);
    expect(contents(dry.messages)).toEqual(['hello from B', 'You said: hello from B', 'what is the vault code?']);
    expect(dry.injected_items).toBe(2);
  });
});

describe('memory budget: requested output tokens are reserved', () => {
  // A long thread on a 600-token model; the client asks for 400 output tokens (more than a
  // quarter of the window, more than the catalog's 200 default). Memory must shrink to fit.
  let thread = '';
  async function longThread() {
    thread = unique('budget');
    for (let i = 0; i < 16; i++) {
      const r = await chat(
        { model: SMALL, max_tokens: 20, messages: [user(`note ${i}: the quick brown fox jumps over the lazy dog`)] },
        thread,
      );
      expect(r.status, r.text).toBe(200);
    }
  }

  for (const field of ['max_tokens', 'max_completion_tokens'] as const) {
    it(`a large ${field} on a small-context model with a long thread still gets 200`, async () => {
      await longThread();
      const r = await chat({ model: SMALL, [field]: 400, messages: [user('what was the last note?')] }, thread);
      expect(r.status, r.text).toBe(200);
      const sent = lastForwarded();
      expect(sent.length).toBeGreaterThan(1); // memory still added something
      expect(contents(sent).at(-1)).toBe('what was the last note?');
      expect(contents(sent).at(-2)).toMatch(/^You said: note 15:/); // the newest turn is the one kept
    });
  }
});

describe('an aborted reply is never injected, also from the cached view of a thread', () => {
  it('after a warm cache, a cut-short reply is stored incomplete and left out of the next request', async () => {
    const thread = unique('abort-cached');
    // Two complete exchanges: the second reads the thread and caches its view, and its write-back
    // keeps that cache current, so the aborted request and the next one are served from it.
    for (const q of ['first question', 'second question']) {
      expect((await chat({ messages: [user(q)] }, thread)).status).toBe(200);
    }
    const controller = new AbortController();
    const res = await env.post(
      '/v1/chat/completions',
      {
        model: MODEL,
        stream: true,
        messages: [user('third question')],
        fake: { mode: 'slow', delayMs: 100, reply: 'PARTIAL reply that will never finish because the client leaves' },
      },
      { ...onThread(thread), signal: controller.signal },
    );
    const reader = res.body!.getReader();
    let seen = '';
    for (let i = 0; i < 50 && !seen.includes('PARTIAL'); i++) seen += new TextDecoder().decode((await reader.read()).value);
    expect(seen).toContain('PARTIAL');
    controller.abort();
    await eventually(() => env.gw.outcomes.some((o) => o.status === 'client_aborted'), 5_000);

    const stored = await (
      await fetch(`${env.gw.url}/v1/threads/${thread}/items?limit=100`, { headers: { authorization: `Bearer ${env.key}` } })
    ).json();
    expect(stored.data.map((i: any) => [i.role, i.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
      ['user', 'complete'],
      ['assistant', 'complete'],
      ['user', 'complete'],
      ['assistant', 'incomplete'],
    ]);
    expect(String(stored.data[5].content)).toContain('PARTIAL');

    expect((await chat({ messages: [user('next')] }, thread)).status).toBe(200);
    const sent = lastForwarded();
    expect(sent.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user', 'user']);
    expect(contents(sent).some((c) => c.includes('PARTIAL'))).toBe(false);

    // Another instance, reading the thread from the database, leaves it out too.
    const workspaceId = env.gw.outcomes.at(-1)!.workspaceId;
    const fresh = await createThreadStore(env.database.db).loadView(workspaceId, thread);
    expect(fresh.recent.map((r) => String(r.content))).toEqual([
      'first question',
      'You said: first question',
      'second question',
      'You said: second question',
      'third question',
      'next',
      'You said: next',
    ]);
  });
});

describe('usage: catalog pricing when the upstream reports no cost', () => {
  it('records prompt × prompt price + completion × completion price, exactly', async () => {
    const { key, workspace } = await env.gw.createKey();
    const res = await fetch(`${env.gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [user('price this exchange for me, please')], fake: { noCost: true } }),
    });
    const body = await res.json();
    expect(res.status).toBe(200);
    const { prompt_tokens: prompt, completion_tokens: completion } = body.usage;
    expect(prompt).toBeGreaterThan(0);
    expect(completion).toBeGreaterThan(0);
    expect(completion).not.toBe(prompt); // so a swapped price or count shows
    await env.gw.deps.usage.flush();
    const day = new Date().toISOString().slice(0, 10);
    const next = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const rows = await (
      await fetch(`${env.gw.url}/admin/usage/requests?workspace=${workspace}&from=${day}&to=${next}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      })
    ).json();
    expect(rows.data).toHaveLength(1);
    // openai/gpt-4o-mini in the fake catalog: 0.00000015 per prompt token, 0.0000006 per completion token.
    expect(rows.data[0]).toMatchObject({
      cost_source: 'catalog',
      estimated: false,
      cost_usd: usd(BigInt(prompt) * 15n + BigInt(completion) * 60n, 8),
    });
  });
});

/** An exact decimal string of `units` × 10^-scale (no floats), shortest form. */
function usd(units: bigint, scale: number): string {
  const text = units.toString().padStart(scale + 1, '0');
  const whole = text.slice(0, -scale);
  const frac = text.slice(-scale).replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : whole;
}
