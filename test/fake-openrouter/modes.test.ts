import { describe, expect, it } from 'vitest';
import { startFakeOpenRouter, UTF8_DEFAULT_REPLY } from './server.js';
import { KEY, sseData, useFake, user } from './testkit.js';

const t = useFake();

describe('fake OpenRouter: aborts and failure modes', () => {
  it('records a client abort mid-stream and stops streaming', async () => {
    const ac = new AbortController();
    const res = await fetch(`${t.fake.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}` },
      body: JSON.stringify({
        model: 'openai/gpt-4o-mini',
        stream: true,
        messages: [user('a b c d e f')],
        fake: { mode: 'slow' },
      }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    const rec = await t.fake.waitForAbort();
    expect(rec).toBe(t.fake.requests[0]);
    expect(rec).toMatchObject({ aborted: true, finished: false });
  });

  it('records an abort of a hanging request', async () => {
    const ac = new AbortController();
    const req = t.client.chat.completions.create(
      {
        model: 'openai/gpt-4o-mini',
        messages: [user('x')],
        fake: { mode: 'hang' },
      } as any,
      { signal: ac.signal },
    );
    setTimeout(() => ac.abort(), 50);
    await expect(req).rejects.toThrow();
    const rec = await t.fake.waitForAbort();
    expect(rec.aborted).toBe(true);
    expect(rec.body.fake.mode).toBe('hang');
  });

  it('splits events inside UTF-8 characters and still decodes to the reply', async () => {
    const res = await t.post('/chat/completions', {
      model: 'openai/gpt-4o-mini',
      stream: true,
      messages: [user('x')],
      fake: { mode: 'utf8_split' },
    });
    const reader = res.body!.getReader();
    const parts: Uint8Array[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
    const isContinuation = (b: number) => (b & 0xc0) === 0x80;
    expect(parts.some((p) => isContinuation(p[0]))).toBe(true); // a chunk began mid-character
    expect(parts.some((p) => new TextDecoder().decode(p) === 'da')).toBe(true); // cut inside "data:"
    const text = Buffer.concat(parts).toString('utf8');
    const content = sseData(text)
      .slice(0, -1)
      .map((d) => JSON.parse(d).choices?.[0]?.delta?.content ?? '')
      .join('');
    expect(content).toBe(UTF8_DEFAULT_REPLY);
  });

  it('streams tool calls the SDK can assemble', async () => {
    const stream = await t.client.chat.completions.create({
      model: 'openai/gpt-4o-mini',
      stream: true,
      messages: [user('weather?')],
      tools: [
        {
          type: 'function',
          function: { name: 'lookup', parameters: { type: 'object' } },
        },
      ],
      fake: { mode: 'tool_calls' },
    } as any);
    let name = '';
    let args = '';
    let finish: string | null = null;
    let argChunks = 0;
    for await (const chunk of stream as any) {
      const c = chunk.choices?.[0];
      const call = c?.delta?.tool_calls?.[0];
      if (call?.function?.name) name = call.function.name;
      if (call?.function?.arguments) {
        args += call.function.arguments;
        argChunks++;
      }
      finish = c?.finish_reason ?? finish;
    }
    expect(name).toBe('lookup');
    expect(JSON.parse(args)).toEqual({ city: 'Paris', unit: 'c' });
    expect(argChunks).toBeGreaterThanOrEqual(3);
    expect(finish).toBe('tool_calls');
  });

  it('fails a stream mid-way with an error event (SDK throws) or a dropped socket', async () => {
    const base = {
      model: 'openai/gpt-4o-mini',
      stream: true,
      messages: [user('a b c d e f')],
    };
    const midstream = await t.post('/chat/completions', {
      ...base,
      fake: { mode: 'midstream_error' },
    });
    const data = sseData(await midstream.text());
    expect(data).not.toContain('[DONE]');
    expect(JSON.parse(data.at(-1)!)).toMatchObject({
      error: { code: 502 },
      choices: [{ finish_reason: 'error' }],
    });
    const sdk = await t.client.chat.completions.create({
      ...base,
      fake: { mode: 'midstream_error' },
    } as any);
    await expect(
      (async () => {
        for await (const _ of sdk as any);
      })(),
    ).rejects.toThrow(/Provider returned error/);

    const dropped = await t.post('/chat/completions', {
      ...base,
      fake: { mode: 'drop' },
    });
    await expect(dropped.text()).rejects.toThrow();
    expect(t.fake.requests.at(-1)).toMatchObject({
      aborted: false,
      finished: false,
    });
  });
});

describe('close()', () => {
  it('does not hang with hanging and stalled requests in flight', async () => {
    const f = await startFakeOpenRouter();
    const send = (mode: string, stream: boolean) =>
      fetch(`${f.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY}` },
        body: JSON.stringify({
          model: 'openai/gpt-4o-mini',
          stream,
          messages: [user('a b c d')],
          fake: { mode },
        }),
      });
    const hang = send('hang', false).catch((e) => e);
    const stalled = await send('stall', true);
    const reader = stalled.body!.getReader();
    await reader.read();
    const started = Date.now();
    await f.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await hang).toBeInstanceOf(Error);
    await expect(
      (async () => {
        for (;;) if ((await reader.read()).done) return;
      })(),
    ).rejects.toThrow();
    expect(f.requests.every((r) => !r.aborted)).toBe(true);
  });
});
