import { createServer } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/client.js';
import { openTestDatabase } from './helpers/databases.js';
import { startTestGateway } from './helpers/gateway.js';
import { MODEL, user } from './helpers/proxy-env.js';

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('upstream not reachable or not configured', () => {
  let database: Database;
  beforeAll(async () => {
    database = await openTestDatabase('pglite');
  });
  afterAll(() => database.close());

  it('connection refused: 503 after retries, with the SDK InternalServerError', async () => {
    const port = await closedPort();
    const gw = await startTestGateway({ database, upstreamUrl: `http://127.0.0.1:${port}/api/v1` });
    try {
      const { key } = await gw.createKey();
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
      const err = await client.chat.completions.create({ model: MODEL, messages: [user('hi')] }).catch((e) => e);
      expect(err).toBeInstanceOf(OpenAI.InternalServerError);
      expect(err.status).toBe(503);
      expect(err.code).toBe('upstream_unavailable');
      expect(gw.outcomes).toHaveLength(1);
      expect(gw.outcomes[0]).toMatchObject({ status: 'upstream_error', httpStatus: 503 });
    } finally {
      await gw.close();
    }
  });

  it('without OPENROUTER_API_KEY the gateway runs and proxied calls answer 503 upstream_not_configured', async () => {
    const gw = await startTestGateway({ database, upstreamUrl: 'http://127.0.0.1:9/api/v1', config: { openrouterApiKey: undefined } });
    try {
      const { key } = await gw.createKey();
      for (const [path, body] of [
        ['/v1/chat/completions', { model: MODEL, messages: [user('hi')] }],
        ['/v1/embeddings', { model: MODEL, input: 'hi' }],
      ] as const) {
        const res = await fetch(gw.url + path, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        expect(res.status).toBe(503);
        expect((await res.json()).error).toMatchObject({ code: 'upstream_not_configured', type: 'server_error' });
      }
      const models = await fetch(gw.url + '/v1/models', { headers: { authorization: `Bearer ${key}` } });
      expect(models.status).toBe(503);
      expect((await fetch(gw.url + '/health')).status).toBe(200);
    } finally {
      await gw.close();
    }
  });
});
