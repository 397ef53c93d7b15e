import OpenAI from 'openai';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { completionReplyFor, expectedCompletionsUsage } from './fake-openrouter/server.js';
import { MODEL, useProxyEnv } from './helpers/proxy-env.js';

// Legacy text completions: a pass-through with usage records, stream and non-stream, with the real
// SDK; and the 404 for what the gateway does not serve names what it does.

const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: any[] }).rows);

describe('POST /v1/completions', () => {
  const env = useProxyEnv();

  it('non-stream and stream answer the upstream text; one usage record each with its tokens', async () => {
    const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key });
    const plain = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 50 });
    expect(plain.choices[0].text).toBe(completionReplyFor({}, 'Once upon a time'));
    const stream = await client.completions.create({ model: MODEL, prompt: 'Tell me more', max_tokens: 50, stream: true });
    let text = '';
    const chunks: any[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.text ?? '';
    }
    expect(text).toBe(completionReplyFor({}, 'Tell me more'));
    // The gateway asked for usage itself; the client, who did not, gets no usage chunk.
    const sent = env.fake.requests.filter((r) => r.path.endsWith('/completions')).map((r) => r.body);
    expect(sent[1].stream_options).toEqual({ include_usage: true });
    expect(chunks.some((ch) => ch.usage)).toBe(false);

    await env.gw.deps.usage.flush(10_000);
    const rows = rowsOf(await env.database.db.execute(sql`select * from usage_records where route = 'completions' order by created_at`));
    expect(rows.map((r) => [r.stream, r.status, r.prompt_tokens, r.completion_tokens])).toEqual([
      [false, 'ok', expectedCompletionsUsage(sent[0]).prompt_tokens, expectedCompletionsUsage(sent[0]).completion_tokens],
      [true, 'ok', expectedCompletionsUsage(sent[1]).prompt_tokens, expectedCompletionsUsage(sent[1]).completion_tokens],
    ]);
  });

  it('refuses a request without a prompt, recorded as rejected', async () => {
    const res = await env.post('/v1/completions', { model: MODEL });
    expect(res.status).toBe(400);
    expect((await res.json()).error.param).toBe('prompt');
    expect(env.fake.requests.filter((r) => r.path.endsWith('/completions'))).toHaveLength(0);
  });

  it("an endpoint the gateway does not serve is OpenAI's 404 naming the served ones, with the right path for a wrong base", async () => {
    const res = await env.post('/v1/audio/speech', { model: MODEL });
    expect(res.status).toBe(404);
    const body = await res.json();
    expect(body.error.code).toBe('unknown_url');
    for (const served of ['/v1/chat/completions', '/v1/completions', '/v1/responses', '/v1/conversations', '/v1/embeddings'])
      expect(body.error.message).toContain(served);
    const wrongBase = await (await env.post('/api/v1/responses', { model: MODEL, input: 'x' })).json();
    expect(wrongBase.error.message).toContain('Did you mean POST /v1/responses?');
  });
});
