import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createSummarizer } from './summarizer.js';
import type { ThreadStore } from './thread-store.js';

function storeWith(summary: string | null, items: { seq: number; role: string; content: string; tokens: number }[]) {
  const saved: { summary: string; upto: number }[] = [];
  const thread = { summary, summaryUptoSeq: 0 };
  const store = {
    getThread: async () => thread,
    unsummarized: async () => items,
    saveSummary: async (_w: string, _t: string, s: string, upto: number) => {
      saved.push({ summary: s, upto });
      return true;
    },
  } as unknown as ThreadStore;
  return { store, saved };
}

const items = Array.from({ length: 10 }, (_, i) => ({
  seq: i + 1,
  role: i % 2 ? 'assistant' : 'user',
  content: `turn ${i} Ada 42`,
  tokens: 10,
}));

describe('summarizer', () => {
  it('folds the oldest half into the summary, telling the model to carry facts forward', async () => {
    const { store, saved } = storeWith('Earlier: the user is Ada.', items);
    const prompts: { system: string; user: string }[] = [];
    const s = createSummarizer({
      store,
      logger: pino({ level: 'silent' }),
      budgetTokens: 50,
      complete: async (_w, _t, p) => (prompts.push(p), 'Ada, 42, turns 0-4.'),
    });
    s.consider('ws', 't');
    await s.idle();
    expect(saved).toEqual([{ summary: 'Ada, 42, turns 0-4.', upto: 5 }]);
    expect(prompts[0].system).toMatch(/every name, number, date, decision and open task/);
    expect(prompts[0].user).toContain('Earlier: the user is Ada.');
    expect(prompts[0].user).toContain('turn 4');
    expect(prompts[0].user).not.toContain('turn 5');
  });

  it('never replaces a good summary with an empty or failed one', async () => {
    for (const complete of [async () => '   ', async () => Promise.reject(new Error('upstream 502'))]) {
      const { store, saved } = storeWith('good summary', items);
      const s = createSummarizer({ store, logger: pino({ level: 'silent' }), budgetTokens: 50, complete });
      s.consider('ws', 't');
      await s.idle();
      expect(saved).toEqual([]);
    }
  });

  it('does nothing while the unsummarized history fits its budget', async () => {
    const { store, saved } = storeWith(null, items);
    let calls = 0;
    const s = createSummarizer({ store, logger: pino({ level: 'silent' }), budgetTokens: 500, complete: async () => (calls++, 'x') });
    s.consider('ws', 't');
    await s.idle();
    expect(calls).toBe(0);
    expect(saved).toEqual([]);
  });

  it("triggers on the model's real budget when the writing request's budget is smaller than the cap", async () => {
    const { store, saved } = storeWith(null, items); // 100 tokens of unsummarized history
    const s = createSummarizer({ store, logger: pino({ level: 'silent' }), budgetTokens: 500, complete: async () => 'folded' });
    s.consider('ws', 't', 60); // an 8k-model request could inject only 60 tokens
    await s.idle();
    expect(saved).toEqual([{ summary: 'folded', upto: 5 }]);
  });
});
