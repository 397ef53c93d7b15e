import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/client.js';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { dbKinds, openTestDatabase } from './helpers/databases.js';
import { ADMIN_TOKEN, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { MODEL } from './helpers/proxy-env.js';

/**
 * Random bytes and shapes at every route, with and without auth: the gateway must answer each
 * with a status below 500 (a 503 only where documented), an OpenAI-shaped error body on JSON
 * routes, and within the timeout. Seeded: FUZZ_SEED=<n> replays a failing run.
 */
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const PER_DATABASE = 300;
const TIMEOUT_MS = 5_000;
/** 503s the spec documents; any other 5xx is a bug. */
const DOCUMENTED_503 = new Set(['upstream_not_configured', 'upstream_unavailable', 'admin_disabled', 'service_unavailable']);

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  return { next, int, pick, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof prng>;

interface Route {
  method: string;
  /** With `{thread}`, `{item}`, `{key}`, `{model}` placeholders for path parameters. */
  path: string;
  /** A valid body, mutated by the fuzzer; absent for routes without one. */
  body?: Record<string, unknown>;
  query?: string[];
  auth: 'proxy' | 'admin' | 'reports' | 'none';
  /** The answer is not JSON (HTML, CSS, JS, Prometheus text): no error-shape check. */
  text?: boolean;
}

const chat = { model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: false, metadata: { thread_id: 'fz' }, max_tokens: 5 };
const threadRoutes = (prefix: string): Route[] => [
  { method: 'POST', path: `${prefix}/chat/completions`, body: chat, auth: 'proxy' },
  {
    method: 'POST',
    path: `${prefix}/chat/completions`,
    body: { ...chat, stream: true, stream_options: { include_usage: true } },
    auth: 'proxy',
  },
  { method: 'POST', path: `${prefix}/embeddings`, body: { model: MODEL, input: ['a', 'b'] }, auth: 'proxy' },
  { method: 'GET', path: `${prefix}/models`, auth: 'proxy' },
  { method: 'GET', path: `${prefix}/models/{model}`, auth: 'proxy' },
  { method: 'GET', path: `${prefix}/threads`, query: ['limit', 'after'], auth: 'proxy' },
  { method: 'POST', path: `${prefix}/threads`, body: { id: 'fz-new', title: 't', metadata: { a: 1 } }, auth: 'proxy' },
  { method: 'GET', path: `${prefix}/threads/{thread}`, auth: 'proxy' },
  { method: 'PATCH', path: `${prefix}/threads/{thread}`, body: { title: 'u', metadata: { b: 2 } }, auth: 'proxy' },
  { method: 'DELETE', path: `${prefix}/threads/{thread}`, auth: 'proxy' },
  { method: 'GET', path: `${prefix}/threads/{thread}/items`, query: ['limit', 'after'], auth: 'proxy' },
  {
    method: 'POST',
    path: `${prefix}/threads/{thread}/items`,
    body: { kind: 'fact', role: 'user', content: 'x', pinned: true },
    auth: 'proxy',
  },
  {
    method: 'PATCH',
    path: `${prefix}/threads/{thread}/items/{item}`,
    body: { content: 'y', pinned: false, status: 'complete' },
    auth: 'proxy',
  },
  { method: 'DELETE', path: `${prefix}/threads/{thread}/items/{item}`, auth: 'proxy' },
  { method: 'POST', path: `${prefix}/threads/{thread}/context`, body: { model: MODEL, messages: chat.messages }, auth: 'proxy' },
];
const REPORT_QUERY = ['from', 'to', 'group_by', 'workspace', 'key', 'model', 'format'];
const ROUTES: Route[] = [
  ...threadRoutes('/v1'),
  ...threadRoutes('/t/{thread}/v1'),
  { method: 'GET', path: '/admin/usage', query: REPORT_QUERY, auth: 'admin' },
  { method: 'GET', path: '/admin/usage', query: REPORT_QUERY, auth: 'reports' },
  { method: 'GET', path: '/admin/usage/requests', query: [...REPORT_QUERY, 'status', 'limit', 'cursor'], auth: 'admin' },
  { method: 'GET', path: '/admin/usage/requests', query: [...REPORT_QUERY, 'status', 'limit', 'cursor'], auth: 'reports' },
  { method: 'POST', path: '/admin/workspaces', body: { name: 'fz-ws' }, auth: 'admin' },
  { method: 'GET', path: '/admin/workspaces', auth: 'admin' },
  {
    method: 'POST',
    path: '/admin/keys',
    body: {
      workspace: 'fz',
      name: 'k',
      scopes: ['proxy'],
      rpm: 10,
      tpm: 10,
      budget_usd: '1.5',
      budget_period: 'day',
      expires_at: '2099-01-01T00:00:00Z',
    },
    auth: 'admin',
  },
  { method: 'GET', path: '/admin/keys', query: ['workspace'], auth: 'admin' },
  { method: 'PATCH', path: '/admin/keys/{key}', body: { name: 'n', rpm: null, budget_usd: 2 }, auth: 'admin' },
  { method: 'POST', path: '/admin/keys/{key}/revoke', auth: 'admin' },
  { method: 'GET', path: '/dashboard', query: ['from', 'to'], auth: 'admin', text: true },
  { method: 'POST', path: '/dashboard/login', auth: 'none', text: true },
  { method: 'POST', path: '/dashboard/logout', auth: 'none', text: true },
  { method: 'GET', path: '/dashboard/app.js', auth: 'none', text: true },
  { method: 'GET', path: '/dashboard/app.css', auth: 'none', text: true },
  { method: 'GET', path: '/health', auth: 'none' },
  { method: 'GET', path: '/health/ready', auth: 'none' },
  { method: 'GET', path: '/health/detailed', auth: 'none' },
  { method: 'GET', path: '/metrics', auth: 'none', text: true },
  { method: 'GET', path: '/', auth: 'none' },
  { method: 'GET', path: '/docs', auth: 'none', text: true },
  { method: 'GET', path: '/openapi.json', auth: 'none' },
  { method: 'GET', path: '/no/such/route', auth: 'none' },
];

const CHAT_ROUTES = ROUTES.filter((r) => r.path.endsWith('/chat/completions') || r.path.endsWith('/embeddings'));

/** Strings that broke something somewhere once: NUL, bad escapes, surrogates, dot segments, size. */
const NASTY_TEXT = [
  '',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff x',
  '..',
  '.',
  ' ',
  '\n',
  '💥',
  'x'.repeat(10_000),
  '%00',
  '<script>',
  "'; drop table x; --",
  '\u202e',
];
/** Raw URL pieces that must be refused wherever they appear: NUL, controls, broken or non-UTF-8 escapes. */
const BAD_URL = ['%00', 'a%00', '%', '%E0%A4%A', '%ZZ', '%ED%A0%80', '%C3', '%FF', '%0A', '%7F', '%01x'];
/** Raw URL pieces a route may refuse or accept, but must not fail on. */
const ODD_URL = [
  '%2F',
  '%2e%2e',
  '..',
  '.',
  '+',
  '%2B',
  '%20',
  'x'.repeat(2_000),
  '%F0%9F%92%A5',
  '2024-01-01',
  '1',
  '-1',
  '1e3',
  'day,model',
  'csv',
  'json',
  'fz',
  '',
];
/** JSON values (as text) to put in place of any field: wrong types, NUL, lone surrogates. */
const NASTY_JSON = [
  'null',
  'true',
  '0',
  '-1',
  '1e309',
  '1.5',
  '9007199254740993',
  '""',
  '"\\u0000"',
  '"a\\u0000b"',
  '"\\ud800"',
  '"\\udc00\\ud800"',
  '[]',
  '{}',
  '[null]',
  '{"__proto__":{"x":1}}',
  '"x"',
  `"${'y'.repeat(5_000)}"`,
];
/**
 * Around the limit, and past the ~5,000 levels where JSON.stringify and other recursive walks
 * overflow. Bodies stay under the smallest body limit (64 KiB): a 413 is answered before the body
 * is read and the connection closed, which can reset a client still uploading (not a finding).
 */
const DEPTHS = [62, 65, 6_000, 25_000];

const nested = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

function randomBytes(rng: Rng, n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

function jsonValue(rng: Rng): string {
  if (rng.chance(0.25)) return nested(rng.pick(DEPTHS));
  if (rng.chance(0.3)) return JSON.stringify(rng.pick(NASTY_TEXT));
  return rng.pick(NASTY_JSON);
}

type Body = string | Uint8Array<ArrayBuffer>;

/** A body for a route: valid, one field (or nested field) wrong, truncated, random bytes, deep. */
function makeBody(rng: Rng, route: Route): { body?: Body; type?: string } {
  const type = rng.chance(0.9)
    ? 'application/json'
    : rng.pick(['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', '']);
  if (route.path === '/dashboard/login' && rng.chance(0.5)) {
    return { body: `token=${rng.pick([...BAD_URL, ...ODD_URL, ADMIN_TOKEN])}`, type: 'application/x-www-form-urlencoded' };
  }
  const base = route.body ?? {};
  const valid = JSON.stringify(base);
  switch (rng.int(7)) {
    case 0:
      return { body: randomBytes(rng, rng.int(300)), type };
    case 1:
      return { body: valid.slice(0, rng.int(valid.length)), type };
    case 2:
      return { body: nested(rng.pick(DEPTHS)), type };
    case 3:
      return { body: rng.chance(0.5) ? valid : undefined, type };
    default: {
      // Replace one field (top level, or one level down) with a nasty value.
      const fields = Object.keys(base);
      const field = fields.length && rng.chance(0.85) ? rng.pick(fields) : rng.pick(['model', 'messages', 'x', '']);
      const copy: Record<string, unknown> = { ...base };
      const value = jsonValue(rng);
      const inner = copy[field];
      if (inner && typeof inner === 'object' && rng.chance(0.5)) {
        const innerKeys = Array.isArray(inner) ? [] : Object.keys(inner);
        const k = rng.pick(innerKeys.length ? innerKeys : ['x']);
        copy[field] = Array.isArray(inner) ? ['@@'] : { ...inner, [k]: '@@' };
      } else copy[field] = '@@';
      return { body: JSON.stringify(copy).replace('"@@"', value), type };
    }
  }
}

interface Ids {
  thread: string;
  item: string;
  key: string;
}

/** The request target; `bad` says whether it holds a piece the input guard must refuse. */
function makeTarget(rng: Rng, route: Route, ids: Ids): { target: string; bad: boolean } {
  let bad = false;
  const piece = (p = 0.25) => {
    if (!rng.chance(p)) return rng.pick(ODD_URL);
    bad = true;
    return rng.pick(BAD_URL);
  };
  const param = (real: string) => (rng.chance(0.6) ? real : piece());
  const real: Record<string, string> = { ...ids, model: encodeURIComponent(MODEL) };
  const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => param(real[name]));
  if (rng.chance(0.3)) return { target: path, bad };
  const names = [...(route.query ?? []), 'x'];
  const parts: string[] = [];
  for (let i = 1 + rng.int(3); i > 0; i--) parts.push(`${rng.chance(0.1) ? piece(0.5) : rng.pick(names)}=${piece()}`);
  return { target: `${path}?${parts.join('&')}`, bad };
}

function authHeader(rng: Rng, route: Route, keys: { proxy: string; reports: string }): string | undefined {
  if (rng.chance(0.15)) return rng.pick([undefined, 'Bearer', 'Bearer x', `Bearer ${keys.proxy}x`, 'Basic abc']);
  if (route.auth === 'proxy') return `Bearer ${keys.proxy}`;
  if (route.auth === 'admin') return `Bearer ${ADMIN_TOKEN}`;
  if (route.auth === 'reports') return `Bearer ${keys.reports}`;
  return undefined;
}

interface Finding {
  request: string;
  problem: string;
}

async function check(res: Response, route: Route, badUrl: boolean): Promise<string | null> {
  const text = await res.text();
  const json = (res.headers.get('content-type') ?? '').includes('application/json');
  let body: any;
  if (json) {
    try {
      body = JSON.parse(text);
    } catch {
      return `unparseable JSON body: ${text.slice(0, 120)}`;
    }
  }
  if (res.status >= 500) {
    const documented = res.status === 503 && (DOCUMENTED_503.has(body?.error?.code) || route.path.startsWith('/health/'));
    if (!documented) return `status ${res.status}: ${text.slice(0, 200)}`;
  }
  if (badUrl && (res.status !== 400 || body?.error?.code !== 'invalid_value')) return `a bad URL got ${res.status}: ${text.slice(0, 200)}`;
  if (res.status >= 400 && !route.text && !route.path.startsWith('/health/')) {
    if (!json) return `status ${res.status} without a JSON body: ${text.slice(0, 120)}`;
    const e = body?.error;
    const shaped =
      e &&
      typeof e.message === 'string' &&
      typeof e.type === 'string' &&
      (e.param === null || typeof e.param === 'string') &&
      (e.code === null || typeof e.code === 'string');
    if (!shaped) return `status ${res.status}, error not OpenAI-shaped: ${text.slice(0, 200)}`;
  }
  return null;
}

describe.each(dbKinds())('fuzzing every route on %s', (kind) => {
  let fake: FakeOpenRouter;
  let database: Database;
  let gw: TestGateway;
  const keys = { proxy: '', reports: '' };
  const ids: Ids = { thread: 'fz', item: '', key: '' };

  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    database = await openTestDatabase(kind);
    gw = await startTestGateway({ database, upstreamUrl: fake.baseUrl });
    keys.proxy = (await gw.createKey()).key;
    keys.reports = (await gw.createKey({ scopes: ['reports'] })).key;
    ids.key = (await gw.createKey()).id; // a key the admin routes may patch and revoke at will
    const auth = { authorization: `Bearer ${keys.proxy}`, 'content-type': 'application/json' };
    await fetch(`${gw.url}/v1/threads`, { method: 'POST', headers: auth, body: JSON.stringify({ id: ids.thread }) });
    const item = await fetch(`${gw.url}/v1/threads/${ids.thread}/items`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ kind: 'note', content: 'n' }),
    });
    ids.item = (await item.json()).id;
  });

  afterAll(async () => {
    await gw?.close();
    await database?.close();
    await fake?.close();
  });

  it(`answers ${PER_DATABASE} random requests without a 500, a malformed error or a hang (seed ${SEED})`, async () => {
    const rng = prng(SEED + (kind === 'postgres' ? 1 : 0));
    const findings: Finding[] = [];
    const statuses = new Map<number, number>();
    for (let i = 0; i < PER_DATABASE; i++) {
      // The proxy routes (chat above all) do the most with a body: they get a larger share.
      const route = rng.chance(0.3) ? rng.pick(CHAT_ROUTES) : rng.pick(ROUTES);
      const { target: path, bad } = makeTarget(rng, route, ids);
      const headers: Record<string, string> = {};
      const auth = authHeader(rng, route, keys);
      if (auth) headers.authorization = auth;
      if (route.path.includes('/chat/') && rng.chance(0.2))
        headers['x-thread-id'] = rng.pick(['..', '.', 'fz', 'a b', 'x'.repeat(129), '\u00e9']);
      let body: Body | undefined;
      if (route.method !== 'GET' && route.method !== 'DELETE') {
        const made = makeBody(rng, route);
        body = made.body;
        if (made.type) headers['content-type'] = made.type;
      }
      const shown = typeof body === 'string' ? body.slice(0, 200) : body ? `<${body.length} random bytes>` : '';
      const request = `#${i} ${route.method} ${path.slice(0, 200)} auth=${route.auth} ${JSON.stringify(headers).slice(0, 300)} body=${shown}`;
      try {
        const res = await fetch(gw.url + path, { method: route.method, headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const problem = await check(res, route, bad);
        if (problem) findings.push({ request, problem });
      } catch (err) {
        // A timeout (a hang), a reset connection, or a request the gateway never answered.
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        findings.push({
          request,
          problem: `no answer: ${(err as Error).name} ${(err as Error).message} ${cause?.code ?? ''} ${cause?.message ?? ''}`,
        });
      }
    }
    const report = findings.map((f) => `${f.request}\n    → ${f.problem}`).join('\n');
    expect(findings, `FUZZ_SEED=${SEED} found:\n${report}`).toEqual([]);
    // The run reached the routes, not only their front doors.
    expect(statuses.get(200) ?? 0, `FUZZ_SEED=${SEED} statuses ${JSON.stringify([...statuses])}`).toBeGreaterThan(PER_DATABASE / 10);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(PER_DATABASE / 10);
  }, 60_000); // a second or two when the machine is quiet; each request is capped at TIMEOUT_MS
});
