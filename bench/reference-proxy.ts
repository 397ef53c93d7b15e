// The bench's yardstick: a bare Hono proxy that calls the upstream with undici's `request` API over a
// keep-alive Pool, as issue 2 describes the reachable floor. No keys, ledger, metrics or memory:
// whatever the gateway adds on top of this is the cost of those features. Loopback only.
// Env: PORT, UPSTREAM_URL (…/api/v1), UPSTREAM_KEY. Prints `PORT <n>` once listening.

import { serve } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { Pool } from 'undici';

const base = new URL(process.env.UPSTREAM_URL ?? 'http://127.0.0.1:1/api/v1');
const auth = `Bearer ${process.env.UPSTREAM_KEY ?? ''}`;
const pool = new Pool(base.origin, { connections: 128 });
const app = new Hono();

app.get('/health', (c) => c.json({ ok: true }));
// Chat completions and the Responses API alike: the bytes go through unchanged, either way.
const forward = (path: string) => async (c: Context) => {
  const body = Buffer.from(await c.req.arrayBuffer());
  const res = await pool.request({
    path: `${base.pathname}${path}`,
    method: 'POST',
    body,
    headers: { authorization: auth, 'content-type': 'application/json' },
  });
  const type = String(res.headers['content-type'] ?? 'application/json');
  if (!type.includes('event-stream')) return c.body(await res.body.text(), res.statusCode as 200, { 'content-type': type });
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      for await (const chunk of res.body) controller.enqueue(chunk);
      controller.close();
    },
  });
  return c.body(stream, 200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
};
app.post('/v1/chat/completions', forward('/chat/completions'));
app.post('/v1/responses', forward('/responses'));

const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 0), hostname: '127.0.0.1' }, (info) =>
  console.log(`PORT ${info.port}`),
);
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
