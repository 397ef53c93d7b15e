import type { Logger } from '../telemetry/logger.js';
import { contentText } from '../tokens/count-tokens.js';
import type { ThreadStore } from './thread-store.js';

export const SUMMARY_INSTRUCTIONS =
  'You keep the running summary of a conversation between a user and an assistant. Merge the new turns into the ' +
  'current summary. Carry forward every name, number, date, decision and open task, even from the oldest part; ' +
  'drop only small talk. Write plain prose or short bullet points, at most 300 words. Output only the updated summary.';

export interface SummarizerOptions {
  store: ThreadStore;
  logger: Logger;
  /** Unsummarized history above this many tokens triggers a summary. */
  budgetTokens: number;
  /** Asks the summary model; returns its text (and records its usage as the gateway's own). */
  complete: (workspaceId: string, threadId: string, prompt: { system: string; user: string }) => Promise<string>;
}

/**
 * Folds the oldest part of a long thread into its running summary, in the background: at most one
 * job per thread, never on a request's path. An empty or failed summary never replaces a good one,
 * and raw items are kept (they are only no longer injected).
 */
export function createSummarizer(opts: SummarizerOptions) {
  const running = new Map<string, Promise<void>>();

  async function summarize(workspaceId: string, threadId: string, budgetTokens: number): Promise<void> {
    const thread = await opts.store.getThread(workspaceId, threadId);
    if (!thread) return;
    const items = await opts.store.unsummarized(workspaceId, threadId, thread.summaryUptoSeq, 2_000);
    const total = items.reduce((s, i) => s + i.tokens, 0);
    if (total <= budgetTokens) return;
    // Fold the oldest half of the unsummarized tokens; the newest stay raw for injection.
    const fold = [];
    let folded = 0;
    for (const item of items) {
      if (folded >= total / 2) break;
      fold.push(item);
      folded += item.tokens;
    }
    const turns = fold.map((i) => `${i.role}: ${contentText(i.content) || JSON.stringify(i.toolCalls ?? '')}`).join('\n');
    const user = `Current summary:\n${thread.summary?.trim() || '(none yet)'}\n\nNew conversation turns to merge:\n${turns}`;
    const text = (await opts.complete(workspaceId, threadId, { system: SUMMARY_INSTRUCTIONS, user })).trim();
    if (!text) {
      opts.logger.warn({ thread: threadId }, 'empty summary ignored; the previous one is kept');
      return;
    }
    await opts.store.saveSummary(workspaceId, threadId, text, fold.at(-1)!.seq, thread.summaryUptoSeq);
  }

  return {
    /**
     * Checks a thread after a write and summarizes it in the background when its unsummarized
     * history has grown past what a request can inject: `budgetTokens`, the memory budget of the
     * request that wrote (the model's real context, less its output and the client's own messages),
     * or the configured cap when unknown.
     */
    consider(workspaceId: string, threadId: string, budgetTokens?: number): void {
      const key = `${workspaceId}\u0000${threadId}`;
      if (running.has(key)) return;
      const budget = budgetTokens !== undefined && budgetTokens > 0 ? Math.min(budgetTokens, opts.budgetTokens) : opts.budgetTokens;
      const job = summarize(workspaceId, threadId, budget)
        .catch((err) => opts.logger.warn({ err: (err as Error).message, thread: threadId }, 'summary failed; the previous one is kept'))
        .finally(() => running.delete(key));
      running.set(key, job);
    },
    /** Resolves when no summary job is running (tests, shutdown). */
    async idle(): Promise<void> {
      while (running.size) await Promise.all([...running.values()]);
    },
  };
}

export type Summarizer = ReturnType<typeof createSummarizer>;
