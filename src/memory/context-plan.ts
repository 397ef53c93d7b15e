import type { ModelInfo } from '../catalog/catalog.js';
import { contentText, countMessageTokens, countTextTokens } from '../tokens/count-tokens.js';
import { alignHistory } from './align-history.js';
import { assembleContext, type HistoryItem } from './assemble-context.js';
import { messageHash, type ChatMessage } from './message-hash.js';
import { withoutLargeInline } from './inline-data.js';
import { redactDeep, type RedactOptions } from './redact.js';
import type { HistoryRow, ItemRow, ThreadRow } from './thread-store.js';

export interface ContextPlanInput {
  body: Record<string, any>;
  model: ModelInfo | undefined;
  thread: ThreadRow | undefined;
  recent: HistoryRow[];
  pinned: ItemRow[];
  inject: boolean;
  /** Cap on injected tokens (MEMORY_DEFAULT_MAX_TOKENS or X-Memory-Max-Tokens). */
  cap: number;
  redact: RedactOptions;
  /** Inline data (data URLs, base64 audio/files) larger than this is stored as a placeholder (MEMORY_MAX_INLINE_BYTES). */
  maxInlineBytes?: number;
  /** Older items retrieved by relevance (best first); see `retrievalBefore`. */
  retrieved?: HistoryRow[];
  /** The share of memory's budget (after pinned items and the summary) retrieved items may take. */
  retrievalShare?: number;
}

export interface ContextPlan {
  messages: ChatMessage[];
  /** The client's new messages (redacted), to store after the response. */
  newMessages: ChatMessage[];
  supersedeSeqs: number[];
  injectedCount: number;
  memoryTokens: number;
  budget: number;
  /** Token count of the forwarded messages (with the safety factor). */
  promptTokens: number;
  mode: string;
  /** Tokens each part of memory took (what the dry run shows). */
  split: { pinned: number; summary: number; retrieved: number; recent: number };
  retrievedCount: number;
  /**
   * Stored messages with a seq below this were neither injected nor sent by the client: where
   * retrieval looks. Null when there is nothing such (the client sent its whole history, or memory
   * injects nothing).
   */
  retrievalBefore: number | null;
  /** The text retrieval searches with: the client's last user message. */
  query: string;
}

const DEFAULT_CONTEXT = 8_192;

// Stored rows as injectable items, per token factor, built once per row: a cached view's rows (and
// the lexical index's) are the same objects request after request, and a view updated by an append
// keeps its older rows, so a turn on a long thread builds (and forward-json encodes) only its new
// messages. Frozen: shared by requests. Per view array too, so an unchanged view costs one lookup.
const itemOfRow = new WeakMap<HistoryRow, Map<number, HistoryItem>>();
function itemOf(r: HistoryRow, factor: number): HistoryItem {
  let byFactor = itemOfRow.get(r);
  if (!byFactor) itemOfRow.set(r, (byFactor = new Map()));
  let item = byFactor.get(factor);
  if (!item) {
    item = Object.freeze({ seq: r.seq, message: Object.freeze(storedMessage(r)), tokens: Math.ceil(r.tokens * factor) });
    byFactor.set(factor, item);
  }
  return item;
}
const itemsOfView = new WeakMap<readonly HistoryRow[], Map<number, HistoryItem[]>>();
function historyItems(rows: readonly HistoryRow[], factor: number): HistoryItem[] {
  let byFactor = itemsOfView.get(rows);
  if (!byFactor) itemsOfView.set(rows, (byFactor = new Map()));
  let items = byFactor.get(factor);
  if (!items) byFactor.set(factor, (items = rows.map((r) => itemOf(r, factor))));
  return items;
}

// One counting function per safety factor, kept: assembly memoizes per function (the preamble).
const counters = new Map<number, (text: string) => number>();
function counterFor(factor: number): (text: string) => number {
  let count = counters.get(factor);
  if (!count) counters.set(factor, (count = (text: string) => Math.ceil(countTextTokens(text) * factor)));
  return count;
}

/** Non-OpenAI models tokenize differently: count with a margin so an estimate never overshoots. */
export function tokenFactor(modelId: string): number {
  return modelId.startsWith('openai/') || /^gpt-|^o\d/.test(modelId) ? 1.05 : 1.25;
}

/** Stored form of a message: what the thread keeps of it. */
export function storedMessage(row: Pick<HistoryRow, 'role' | 'content' | 'toolCalls' | 'toolCallId' | 'name'>): ChatMessage {
  const m: ChatMessage = { role: row.role ?? 'user', content: row.content ?? null };
  if (Array.isArray(row.toolCalls) && row.toolCalls.length) m.tool_calls = row.toolCalls as ChatMessage['tool_calls'];
  if (row.toolCallId) m.tool_call_id = row.toolCallId;
  if (row.name) m.name = row.name;
  return m;
}

/** The form in which memory stores (and recognizes) a client's message. */
export function storableMessage(m: ChatMessage, redact: RedactOptions, maxInlineBytes = DEFAULT_MAX_INLINE): ChatMessage {
  return redactDeep(withoutLargeInline(m, maxInlineBytes), redact).value;
}

export const DEFAULT_MAX_INLINE = 65_536;

/** Tokens of one stored message (content, name and tool calls, plus framing). */
export function messageTokens(m: ChatMessage): number {
  return countMessageTokens([m]) - 3;
}

/**
 * Decides what is forwarded and what will be stored: splits off the client's system messages,
 * recognizes history the client re-sent (by content hash of the redacted message), fits the
 * stored history the client did not send into the budget: the model's context length minus the
 * requested output and a margin, capped.
 */
export function planContext(input: ContextPlanInput): ContextPlan {
  return contextPlanner(input).plan(input.retrieved, input.retrievalShare);
}

/**
 * Everything up to assembly (alignment, budget, the history candidates), computed once; `plan`
 * then assembles, with or without retrieved items (a request with retrieval assembles twice: first
 * to learn what was left out, then with what retrieval found).
 */
export function contextPlanner(input: ContextPlanInput) {
  const all = (input.body.messages as ChatMessage[]).filter((m) => m && typeof m === 'object');
  let lead = 0;
  while (lead < all.length && (all[lead].role === 'system' || all[lead].role === 'developer')) lead++;
  const clientSystem = all.slice(0, lead);
  const clientRest = all.slice(lead);
  // What would be stored of each client message: large inline data replaced, then secrets redacted.
  const redacted = clientRest.map((m) => storableMessage(m, input.redact, input.maxInlineBytes));
  const clientHashes = redacted.map(messageHash);

  const summarizedUpTo = input.thread?.summaryUptoSeq ?? 0;
  const stored = input.recent;
  const alignment = alignHistory({
    stored: stored.map((r) => r.contentHash),
    client: clientHashes,
    storedRoles: stored.map((r) => r.role ?? ''),
    clientLastRole: clientRest.at(-1)?.role,
  });
  const supersedeSeqs = alignment.supersedeFrom === null ? [] : stored.slice(alignment.supersedeFrom).map((r) => r.seq);
  const newMessages = redacted.slice(alignment.newFrom);

  const modelId = String(input.body.model);
  const factor = tokenFactor(modelId);
  const count = counterFor(factor);
  const contextLength = input.model?.contextLength ?? DEFAULT_CONTEXT;
  const requested = Number(input.body.max_completion_tokens ?? input.body.max_tokens);
  const reserve =
    Number.isFinite(requested) && requested > 0
      ? requested
      : Math.min(input.model?.maxCompletionTokens ?? 1_024, Math.floor(contextLength / 4));
  const clientTokens = Math.ceil(countMessageTokens(all) * factor) + (input.body.tools ? count(JSON.stringify(input.body.tools)) : 0);
  const margin = Math.ceil(contextLength * 0.05) + 64;
  const budget = input.inject ? Math.max(0, Math.min(contextLength - reserve - margin - clientTokens, input.cap)) : 0;

  const candidates = historyItems(stored, factor).slice(0, alignment.injectUpTo);
  const history: HistoryItem[] =
    candidates.length && candidates[0].seq <= summarizedUpTo ? candidates.filter((r) => r.seq > summarizedUpTo) : candidates;
  return {
    plan(retrieved?: HistoryRow[], retrievalShare?: number): ContextPlan {
      const assembled = assembleContext({
        clientSystem,
        clientRest,
        pinned: input.inject ? input.pinned.map((p) => contentText(p.content)).filter(Boolean) : [],
        summary: input.inject ? (input.thread?.summary ?? null) : null,
        history: input.inject ? history : [],
        retrieved: input.inject ? (retrieved ?? []).filter((r) => r.seq > 0).map((r) => itemOf(r, factor)) : [],
        retrievalShare,
        budget,
        count,
      });
      // Below the oldest stored message that went in (or that the client covers), nothing was seen.
      const oldestIn = assembled.injected[0]?.seq ?? stored[alignment.injectUpTo]?.seq ?? (input.thread ? input.thread.nextSeq : 0);
      const retrievalBefore = input.inject && alignment.injectUpTo > 0 && budget > 0 ? oldestIn : null;
      const lastUser = [...clientRest].reverse().find((m) => m.role === 'user');
      return {
        messages: assembled.messages,
        newMessages,
        supersedeSeqs,
        injectedCount: assembled.injected.length,
        memoryTokens: assembled.memoryTokens,
        budget,
        promptTokens: clientTokens + assembled.memoryTokens,
        mode: alignment.mode,
        split: assembled.split,
        retrievedCount: assembled.retrieved.length,
        retrievalBefore,
        query: lastUser ? contentText(lastUser.content) : '',
      };
    },
  };
}
