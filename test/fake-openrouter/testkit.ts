// Shared setup for the fake's own tests: one fake per test file, reset between tests.

import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startFakeOpenRouter, type FakeOpenRouter } from './server.js';

export const KEY = 'sk-or-v1-fake';

export const user = (content: string) => ({ role: 'user' as const, content });

export interface Kit {
  fake: FakeOpenRouter;
  /** openai SDK client pointed at the fake, without retries so failures surface directly. */
  client: OpenAI;
  post(path: string, body: unknown, key?: string): Promise<Response>;
}

export function useFake(): Kit {
  const kit = {} as Kit;
  beforeAll(async () => {
    kit.fake = await startFakeOpenRouter();
    kit.client = new OpenAI({
      baseURL: kit.fake.baseUrl,
      apiKey: KEY,
      maxRetries: 0,
    });
    kit.post = (path, body, key = KEY) =>
      fetch(`${kit.fake.baseUrl}${path}`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${key}`,
          'Content-Type': 'application/json',
        },
        body: JSON.stringify(body),
      });
  });
  afterAll(() => kit.fake.close());
  afterEach(() => kit.fake.reset());
  return kit;
}

/** Parse an SSE body the strict way clients do: events end at a blank line, comments are skipped. */
export function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => block.slice('data: '.length));
}
