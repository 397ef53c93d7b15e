import { describe, expect, it } from 'vitest';
import { createChatStreamTap } from './chat-stream-tap.js';

const enc = new TextEncoder();
const chunk = (delta: object, extra: object = {}) =>
  JSON.stringify({
    id: 'gen-1',
    model: 'm/served',
    provider: 'P',
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta, finish_reason: null }],
    ...extra,
  });
const usage = { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7, cost: 0.0000123 };

/** Feeds text split at every byte, so lines, events and UTF-8 code points are all cut. */
function feedBytewise(tap: ReturnType<typeof createChatStreamTap>, text: string): string {
  const bytes = enc.encode(text);
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += tap.push(bytes.subarray(i, i + 1));
  return out + tap.end();
}

describe('chat stream tap', () => {
  const upstream = [
    ': OPENROUTER PROCESSING',
    '',
    `data: ${chunk({ role: 'assistant', content: '' })}`,
    '',
    `data: ${chunk({ role: 'assistant', content: 'héllo 你' })}`,
    '',
    `data: ${chunk({ role: 'assistant', content: '好 🎉' })}`,
    '',
    `data: ${JSON.stringify({ id: 'gen-1', choices: [{ index: 0, delta: { content: '' }, finish_reason: 'stop' }] })}`,
    '',
    `data: ${JSON.stringify({ id: 'gen-1', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }], usage })}`,
    '',
    'data: [DONE]',
    '',
    '',
  ].join('\r\n');

  it('assembles text across split bytes and CRLF framing, and observes usage', () => {
    const tap = createChatStreamTap({ includeUsage: false });
    const out = feedBytewise(tap, upstream);
    tap.complete(true);
    expect(tap.state.text).toBe('héllo 你好 🎉');
    expect(tap.state.usage).toMatchObject({ promptTokens: 5, completionTokens: 2, cost: '0.0000123' });
    expect(tap.state).toMatchObject({ sawDone: true, finishReason: 'stop', servedModel: 'm/served', generationId: 'gen-1', provider: 'P' });
    expect(out).not.toContain('usage');
    expect(out.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(out).toContain(': OPENROUTER PROCESSING\n\n');
  });

  it('forwards payloads verbatim and each event as soon as it is complete', () => {
    const tap = createChatStreamTap({ includeUsage: false });
    const payload = chunk({ content: 'x' });
    expect(tap.push(enc.encode(`data: ${payload}\n`))).toBe('');
    expect(tap.push(enc.encode('\n'))).toBe(`data: ${payload}\n\n`);
  });

  it('keeps the usage chunk with choices [] when the client asked', () => {
    const tap = createChatStreamTap({ includeUsage: true });
    const out = feedBytewise(tap, upstream);
    const usageEvents = out
      .split('\n\n')
      .filter((e) => e.includes('"usage"'))
      .map((e) => JSON.parse(e.slice(6)));
    expect(usageEvents).toHaveLength(1);
    expect(usageEvents[0].choices).toEqual([]);
    expect(usageEvents[0].usage).toEqual(usage);
  });

  it('splits usage carried on a content chunk into the content and a usage chunk', () => {
    const tap = createChatStreamTap({ includeUsage: true });
    const out = tap.push(enc.encode(`data: ${chunk({ content: 'last' }, { usage })}\n\n`));
    const events = out
      .split('\n\n')
      .filter(Boolean)
      .map((e) => JSON.parse(e.slice(6)));
    expect(events).toHaveLength(2);
    expect(events[0].choices[0].delta.content).toBe('last');
    expect(events[0].usage).toBeNull();
    expect(events[1].choices).toEqual([]);
    expect(tap.complete(true).text).toBe('last');
  });

  it('turns an in-band error into one OpenAI-shaped event and ignores what follows', () => {
    const tap = createChatStreamTap({ includeUsage: false });
    const err = JSON.stringify({
      id: 'gen-1',
      error: { code: 429, message: 'Rate limited upstream' },
      choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }],
    });
    const out = tap.push(
      enc.encode(`data: ${chunk({ content: 'a' })}\n\ndata: ${err}\n\ndata: ${chunk({ content: 'b' })}\n\ndata: [DONE]\n\n`),
    );
    const events = out.split('\n\n').filter(Boolean);
    expect(events).toHaveLength(2);
    expect(JSON.parse(events[1].slice(6))).toEqual({
      error: {
        message: 'Rate limited upstream',
        type: 'requests',
        param: null,
        code: 'rate_limit_exceeded',
        upstream: { status: 200, code: 429, message: 'Rate limited upstream' },
      },
    });
    expect(tap.state.error).not.toBeNull();
    expect(tap.complete(true).text).toBe('a');
    expect(tap.state.sawDone).toBe(false);
  });

  it('reassembles tool calls by index', () => {
    const tap = createChatStreamTap({ includeUsage: false });
    const parts = [
      { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] },
      { tool_calls: [{ index: 1, id: 'call_2', type: 'function', function: { name: 'other', arguments: '{}' } }] },
      { tool_calls: [{ index: 0, function: { arguments: 'ty":"Oslo"}' } }] },
    ];
    for (const delta of parts) tap.push(enc.encode(`data: ${chunk(delta)}\n\n`));
    expect(tap.complete(true).toolCalls).toEqual([
      { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
      { id: 'call_2', type: 'function', function: { name: 'other', arguments: '{}' } },
    ]);
  });

  it('without content, completes only the ending: finish reason and served model', () => {
    const tap = createChatStreamTap({ includeUsage: false });
    feedBytewise(tap, upstream);
    const state = tap.complete(false);
    expect(state).toMatchObject({ finishReason: 'stop', text: '', usage: { promptTokens: 5 } });
  });

  it('drops non-JSON data lines that would make OpenAI clients throw', () => {
    const tap = createChatStreamTap({ includeUsage: false });
    expect(tap.push(enc.encode('data: not json\n\nevent: ping\ndata: {}\n\n'))).toBe('data: {}\n\n');
  });
});

describe('verbatim passthrough', () => {
  it('marks plain ASCII events as verbatim, and never a chunk that splits a character', () => {
    const tap = createChatStreamTap({ includeUsage: false });
    const event = `data: ${chunk({ content: 'plain' })}\n\n`;
    expect(tap.push(enc.encode(event))).toBe(event);
    expect(tap.verbatim).toBe(true);
    const bytes = enc.encode(`data: ${chunk({ content: 'é' })}\n\n`);
    const cut = bytes.indexOf(0xc3) + 1; // inside the two bytes of "é"
    tap.push(bytes.subarray(0, cut));
    expect(tap.verbatim).toBe(false);
    expect(tap.push(bytes.subarray(cut))).toContain('é');
    expect(tap.verbatim).toBe(false);
    tap.push(enc.encode(`data: ${chunk({ content: 'x' })}\n`)); // an unfinished event
    expect(tap.verbatim).toBe(false);
  });
});

describe('plain events skip the parser', () => {
  const plain = (content: string) => `data: ${chunk({ role: 'assistant', content })}\n\n`;

  it('passes whole plain events through as they came and assembles their content on demand', () => {
    const tap = createChatStreamTap({ includeUsage: true });
    const first = `: OPENROUTER PROCESSING\n\n${plain('Hel')}${plain('lo')}`;
    expect(tap.push(enc.encode(first))).toBe(first);
    expect(tap.verbatim).toBe(true);
    // cut inside an event: that chunk goes through the parser, and so does the one that finishes it
    const rest = `${plain(' wor')}${plain('ld')}data: ${JSON.stringify({ id: 'gen-1', choices: [], usage })}\n\ndata: [DONE]\n\n`;
    const cut = rest.indexOf('wor');
    let out = tap.push(enc.encode(rest.slice(0, cut)));
    expect(tap.verbatim).toBe(false);
    out += tap.push(enc.encode(rest.slice(cut)));
    expect(out).toBe(rest);
    // after [DONE] nothing more goes out, plain or not
    expect(tap.push(enc.encode(plain('late')))).toBe('');
    const state = tap.complete(true);
    expect(state).toMatchObject({
      text: 'Hello world',
      usage: { promptTokens: 5 },
      sawDone: true,
      servedModel: 'm/served',
      generationId: 'gen-1',
    });
  });

  it('answers usage, errors, CR framing, other fields and unfinished events as the parser does', () => {
    const cases = [
      `data: ${chunk({ content: 'a' }, { usage })}\n\n`,
      `data: ${JSON.stringify({ error: { code: 500, message: 'boom' } })}\n\n`,
      `data: ${chunk({ content: 'a' })}\r\n\r\n`,
      `event: x\ndata: ${chunk({ content: 'a' })}\n\n`,
      `data: ${chunk({ content: 'a' })}\ndata: ${chunk({ content: 'b' })}\n\n`,
      `data: ${chunk({ content: 'a' })}\n`,
      `data: ${chunk({ content: 'a' })}\n\n: keep-alive\n\n`,
    ];
    for (const text of cases) {
      const reference = createChatStreamTap({ includeUsage: false });
      const expected = feedBytewise(reference, text);
      const tap = createChatStreamTap({ includeUsage: false });
      expect(tap.push(enc.encode(text)) + tap.end(), text).toBe(expected);
      expect(tap.complete(true), text).toEqual(reference.complete(true));
    }
  });

  it('gives the same output and content as the parser alone, whatever the chunking', () => {
    const stream = [
      ': OPENROUTER PROCESSING\n\n',
      plain('a'),
      plain('b'),
      plain('c'),
      `data: ${JSON.stringify({ id: 'gen-1', choices: [], usage })}\n\n`,
      'data: [DONE]\n\n',
    ].join('');
    const reference = createChatStreamTap({ includeUsage: true });
    const expected = feedBytewise(reference, stream);
    const expectedState = reference.complete(true);
    for (const size of [7, 50, 120, stream.length]) {
      const tap = createChatStreamTap({ includeUsage: true });
      let out = '';
      for (let i = 0; i < stream.length; i += size) out += tap.push(enc.encode(stream.slice(i, i + size)));
      out += tap.end();
      expect(out, `chunks of ${size}`).toBe(expected);
      expect(tap.complete(true)).toEqual(expectedState);
    }
  });
});

describe('chat stream tap: what it keeps is bounded', () => {
  const words = Array.from({ length: 5_000 }, (_, i) => `word${i} `);
  const events =
    words.map((w) => `data: ${chunk({ role: 'assistant', content: w })}\n\n`).join('') +
    `data: ${JSON.stringify({ id: 'gen-1', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n` +
    `data: ${JSON.stringify({ id: 'gen-1', choices: [], usage })}\n\n` +
    'data: [DONE]\n\n';

  it.each([
    ['whole events per push (the fast path)', 4_096],
    ['split pushes (the parser)', 777],
  ])('%s: relays every byte, keeps the first maxKeptChars of the text, counts the rest', (_name, size) => {
    const tap = createChatStreamTap({ includeUsage: false, maxKeptChars: 1_000 });
    const bytes = enc.encode(events);
    let out = '';
    // Pushes cut on event boundaries for the fast path, anywhere for the parser.
    let start = 0;
    while (start < bytes.length) {
      let end = Math.min(bytes.length, start + size);
      if (size === 4_096) {
        const next = events.indexOf('\n\n', end);
        end = next === -1 ? bytes.length : next + 2;
      }
      out += tap.push(bytes.subarray(start, end));
      start = end;
    }
    out += tap.end();
    const s = tap.complete(true);
    const full = words.join('');
    expect(out.split('\n\n').filter((e) => e.startsWith('data: {"id":"gen-1","model"'))).toHaveLength(words.length);
    expect(s.text).toBe(full.slice(0, 1_000));
    expect(s.truncatedChars).toBe(full.length - 1_000);
    expect(s.finishReason).toBe('stop');
    expect(s.usage?.completionTokens).toBe(2);
    expect(s.sawDone).toBe(true);
  });

  it('keeps everything when the reply fits', () => {
    const tap = createChatStreamTap({ includeUsage: false, maxKeptChars: 1_000_000 });
    tap.push(enc.encode(events));
    tap.end();
    const s = tap.complete(true);
    expect(s.text).toBe(words.join(''));
    expect(s.truncatedChars).toBe(0);
  });
});
