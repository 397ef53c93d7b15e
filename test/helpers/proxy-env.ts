import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Config } from '../../src/config.js';
import type { Database } from '../../src/db/client.js';
import { startFakeOpenRouter, type FakeOpenRouter } from '../fake-openrouter/server.js';
import { openTestDatabase, type DbKind } from './databases.js';
import { startTestGateway, type TestGateway } from './gateway.js';

export interface ProxyEnv {
  fake: FakeOpenRouter;
  database: Database;
  gw: TestGateway;
  key: string;
  /** The official SDK pointed at the gateway, without its own retries so failures surface. */
  openai: OpenAI;
  post(path: string, body: unknown, init?: { headers?: Record<string, string>; signal?: AbortSignal }): Promise<Response>;
}

/** A fake OpenRouter, a database and a listening gateway for one test file. */
export function useProxyEnv(opts: { db?: DbKind; config?: Partial<Config> } = {}): ProxyEnv {
  const env = {} as ProxyEnv;
  beforeAll(async () => {
    env.fake = await startFakeOpenRouter();
    env.database = await openTestDatabase(opts.db ?? 'pglite');
    env.gw = await startTestGateway({ database: env.database, upstreamUrl: env.fake.baseUrl, config: opts.config });
    env.key = (await env.gw.createKey()).key;
    env.openai = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key, maxRetries: 0, timeout: 20_000 });
    env.post = (path, body, init = {}) =>
      fetch(env.gw.url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${env.key}`, 'content-type': 'application/json', ...init.headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
        signal: init.signal,
      });
  });
  afterEach(() => {
    env.fake.reset();
    env.gw.outcomes.length = 0;
  });
  afterAll(async () => {
    await env.gw?.close();
    await env.database?.close();
    await env.fake?.close();
  });
  return env;
}

export const user = (content: string) => ({ role: 'user' as const, content });
export const MODEL = 'openai/gpt-4o-mini';

/** Reads an SSE body into its `data:` payloads (and whether comments appeared). */
export async function readSse(res: Response): Promise<{ data: string[]; raw: string }> {
  const raw = await res.text();
  const data = raw.split(/\n\n/).flatMap((block) =>
    block
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => l.slice(6)),
  );
  return { data, raw };
}
