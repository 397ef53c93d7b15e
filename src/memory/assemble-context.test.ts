import { describe, expect, it } from 'vitest';
import { assembleContext, type HistoryItem } from './assemble-context.js';

const words = (t: string) => t.split(/\s+/).filter(Boolean).length;
const item = (seq: number, role: string, content: string, extra: Record<string, unknown> = {}): HistoryItem => ({
  seq,
  message: { role, content, ...extra },
  tokens: words(content) + 3,
});
const base = {
  clientSystem: [{ role: 'system', content: 'be brief' }],
  clientRest: [{ role: 'user', content: 'now?' }],
  pinned: [],
  summary: null,
  count: words,
};

describe('assembleContext', () => {
  it('orders client system, memory message, history, client messages', () => {
    const out = assembleContext({
      ...base,
      pinned: ['name is Ada'],
      summary: 'They discussed tea.',
      history: [item(1, 'user', 'hi'), item(2, 'assistant', 'hello')],
      budget: 1000,
    });
    expect(out.messages.map((m) => m.role)).toEqual(['system', 'system', 'user', 'assistant', 'user']);
    expect(out.messages[0].content).toBe('be brief');
    expect(out.memoryMessage).toMatch(/not instructions/);
    expect(out.memoryMessage).toContain('- name is Ada');
    expect(out.memoryMessage).toContain('They discussed tea.');
    expect(out.messages.at(-1)!.content).toBe('now?');
  });

  it('keeps the newest history within the budget', () => {
    const history = Array.from({ length: 10 }, (_, i) => item(i + 1, i % 2 ? 'assistant' : 'user', `turn ${i} of the talk`));
    const out = assembleContext({ ...base, history, budget: 3 * 8 });
    expect(out.injected.map((i) => i.seq)).toEqual([8, 9, 10]);
    expect(out.memoryTokens).toBeLessThanOrEqual(24);
  });

  it('never splits a tool call from its results, and drops orphaned results', () => {
    const history = [
      item(1, 'tool', 'orphan result', { tool_call_id: 'x' }),
      item(2, 'user', 'weather?'),
      item(3, 'assistant', '', { tool_calls: [{ id: 'c1', function: { name: 'w', arguments: '{}' } }] }),
      item(4, 'tool', 'sunny and warm today', { tool_call_id: 'c1' }),
      item(5, 'assistant', 'It is sunny.'),
    ];
    const all = assembleContext({ ...base, history, budget: 1000 });
    expect(all.injected.map((i) => i.seq)).toEqual([2, 3, 4, 5]);
    // Room for the last reply and the tool result, but not for the call that goes with it: neither is injected.
    const tight = assembleContext({ ...base, history, budget: 6 + 7 + 2 });
    expect(tight.injected.map((i) => i.seq)).toEqual([5]);
  });

  it('adds nothing when the budget is zero', () => {
    const out = assembleContext({ ...base, pinned: ['x'], summary: 's', history: [item(1, 'user', 'hi')], budget: 0 });
    expect(out.messages).toEqual([...base.clientSystem, ...base.clientRest]);
    expect(out.memoryTokens).toBe(0);
  });

  it('gives retrieved items their share first, in thread order, and recent history the rest', () => {
    const history = Array.from({ length: 40 }, (_, i) =>
      item(100 + i, i % 2 ? 'assistant' : 'user', `recent turn ${i} about nothing much`),
    );
    const retrieved = [
      item(7, 'user', 'my dog is called Rex'),
      item(3, 'user', 'my sister lives in Lisbon'),
      item(5, 'assistant', 'a very long answer '.repeat(60)),
    ];
    const out = assembleContext({ ...base, history, retrieved, retrievalShare: 0.5, budget: 200 });
    // The long one did not fit the share; the two that did are in thread order.
    expect(out.retrieved.map((i) => i.seq)).toEqual([3, 7]);
    expect(out.memoryMessage).toMatch(
      /Retrieved from earlier[^\n]*\n- \(user, earlier\) my sister lives in Lisbon\n- \(user, earlier\) my dog is called Rex/,
    );
    expect(out.split.retrieved).toBeGreaterThan(0);
    expect(out.split.retrieved).toBeLessThanOrEqual(100);
    expect(out.split.recent).toBeGreaterThan(0);
    expect(out.split.pinned + out.split.summary + out.split.retrieved + out.split.recent).toBeLessThanOrEqual(out.memoryTokens);
    expect(out.memoryTokens).toBeLessThanOrEqual(200);
    // Without a share, the whole budget goes to recent history.
    const none = assembleContext({ ...base, history, budget: 200 });
    expect(none.retrieved).toEqual([]);
    expect(none.split.recent).toBeGreaterThan(out.split.recent);
  });

  it('shortens a summary that does not fit instead of dropping it', () => {
    const summary = Array.from({ length: 200 }, (_, i) => `fact${i}`).join(' ');
    const out = assembleContext({ ...base, summary, history: [], budget: 120 });
    expect(out.memoryMessage).toContain('Summary of earlier conversation:\nfact0 fact1');
    expect(out.memoryMessage).toMatch(/…$/);
    expect(out.memoryTokens).toBeLessThanOrEqual(120);
    expect(out.split.summary).toBeGreaterThan(50);
  });
});
