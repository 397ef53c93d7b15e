import { describe, expect, it } from 'vitest';
import { forwardedJson } from './forward-json.js';

const stored = (role: string, content: unknown, extra: Record<string, unknown> = {}) => Object.freeze({ role, content, ...extra });

describe('forwardedJson', () => {
  const history = [
    stored('user', 'My name is Ada.'),
    stored('assistant', null, { tool_calls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{"a":"\\u2028"}' } }] }),
    stored('tool', 'sunny — 23 °C, "quoted" \\ backslash', { tool_call_id: 'c1' }),
    stored('user', [
      { type: 'text', text: 'émoji 🎉' },
      { type: 'image_url', image_url: { url: 'data:…', detail: 'auto' } },
    ]),
  ];

  it('gives the bytes JSON.stringify gives, whatever the fields around the messages', () => {
    const bodies: Record<string, unknown>[] = [
      { model: 'openai/gpt-4o-mini', messages: [{ role: 'system', content: 'terse' }, ...history, { role: 'user', content: 'hi' }] },
      { messages: [...history], model: 'm', stream: true, stream_options: { include_usage: true }, tools: [{ type: 'function' }] },
      { model: 'm', skipped: undefined, fn: () => 1, n: 2, temperature: 0.5, stop: ['\n'], messages: [], user: 'ü' },
      { model: 'm', messages: history, metadata: { nested: { deep: [1, null, 'x'] } } },
    ];
    for (const body of bodies) expect(forwardedJson(body).toString('utf8')).toBe(JSON.stringify(body));
  });

  it('reuses a stored message’s bytes, but never a client message’s (which may differ next time)', () => {
    const client = { role: 'user', content: 'first' };
    const body = { model: 'm', messages: [...history, client] };
    expect(forwardedJson(body).toString()).toBe(JSON.stringify(body));
    client.content = 'changed';
    expect(forwardedJson(body).toString()).toBe(JSON.stringify(body));
  });

  it('serializes a body without a messages array as JSON.stringify does', () => {
    const body = { model: 'm', input: 'x' };
    expect(forwardedJson(body).toString()).toBe(JSON.stringify(body));
  });
});
