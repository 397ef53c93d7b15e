import { messageTokens } from '../memory/context-plan.js';
import { messageHash, type ChatMessage } from '../memory/message-hash.js';
import { redactDeep, type RedactOptions } from '../memory/redact.js';
import { withoutLargeInline } from '../memory/inline-data.js';
import type { NewItem } from '../memory/thread-store.js';
import { countTextTokens } from '../tokens/count-tokens.js';
import { GatewayError } from '../errors.js';

/** A Responses API item (input or output) as it travels: `{type, …}`, or a bare `{role, content}` message. */
export type ResponseItem = Record<string, any>;

/** `input` as a list of items: a string is one user message. Anything else is the client's error. */
export function inputItems(input: unknown): ResponseItem[] {
  if (typeof input === 'string') return [{ type: 'message', role: 'user', content: input }];
  if (!Array.isArray(input))
    throw new GatewayError('invalid_value', "Invalid value for 'input': expected a string or an array of items.", { param: 'input' });
  input.forEach((item, i) => {
    if (!item || typeof item !== 'object' || Array.isArray(item)) {
      throw new GatewayError('invalid_value', `Invalid value for 'input[${i}]': expected an object.`, { param: `input[${i}]` });
    }
  });
  return input as ResponseItem[];
}

const isMessage = (item: ResponseItem) => item.type === 'message' || (item.type === undefined && typeof item.role === 'string');

/** A Responses content part as a chat content part (text, image), for thread memory and token counts. */
function chatPart(part: any): unknown {
  if (!part || typeof part !== 'object') return { type: 'text', text: String(part ?? '') };
  if ((part.type === 'input_text' || part.type === 'output_text' || part.type === 'text') && typeof part.text === 'string')
    return { type: 'text', text: part.text };
  if (part.type === 'refusal' && typeof part.refusal === 'string') return { type: 'text', text: part.refusal };
  if (part.type === 'input_image') {
    const url = typeof part.image_url === 'string' ? part.image_url : part.file_id ? `file:${part.file_id}` : '';
    return { type: 'image_url', image_url: { url, ...(part.detail && part.detail !== 'auto' ? { detail: part.detail } : {}) } };
  }
  if (part.type === 'input_file') {
    return { type: 'file', file: { filename: part.filename, file_data: part.file_data ?? part.file_url ?? part.file_id } };
  }
  return { type: 'text', text: JSON.stringify(part) };
}

function chatContent(content: unknown): unknown {
  if (typeof content === 'string' || content === null || content === undefined) return content ?? '';
  if (Array.isArray(content)) return content.map(chatPart);
  return String(content);
}

/**
 * The chat form of a Responses item, as thread memory keeps messages: a message, an assistant tool
 * call (function_call), a tool result (function_call_output). Null for items chat has no form for
 * (reasoning, built-in tool calls): they are kept raw and sent back only to the Responses API.
 */
export function chatFormOf(item: ResponseItem): ChatMessage | null {
  if (isMessage(item)) return { role: String(item.role), content: chatContent(item.content) };
  if (item.type === 'function_call') {
    return {
      role: 'assistant',
      content: null,
      tool_calls: [
        {
          id: String(item.call_id ?? ''),
          type: 'function',
          function: { name: String(item.name ?? ''), arguments: String(item.arguments ?? '') },
        },
      ],
    };
  }
  if (item.type === 'function_call_output') {
    return {
      role: 'tool',
      tool_call_id: String(item.call_id ?? ''),
      content: typeof item.output === 'string' ? item.output : JSON.stringify(item.output ?? ''),
    };
  }
  return null;
}

/**
 * A thread row written by chat (no raw item) as a Responses input item: messages as messages, tool
 * calls as function_call items, tool results as function_call_output.
 */
export function itemsOfChatRow(row: {
  role: string | null;
  content: unknown;
  toolCalls: unknown;
  toolCallId: string | null;
}): ResponseItem[] {
  if (row.role === 'tool')
    return [
      {
        type: 'function_call_output',
        call_id: row.toolCallId ?? '',
        output: typeof row.content === 'string' ? row.content : JSON.stringify(row.content ?? ''),
      },
    ];
  const out: ResponseItem[] = [];
  const text =
    typeof row.content === 'string'
      ? row.content
      : Array.isArray(row.content)
        ? row.content.map((p: any) => (typeof p?.text === 'string' ? p.text : '')).join('')
        : '';
  if (text) out.push({ type: 'message', role: row.role ?? 'user', content: text });
  if (Array.isArray(row.toolCalls)) {
    for (const call of row.toolCalls) {
      out.push({
        type: 'function_call',
        call_id: String(call?.id ?? ''),
        name: String(call?.function?.name ?? ''),
        arguments: String(call?.function?.arguments ?? ''),
      });
    }
  }
  return out;
}

/** Large inline data in a Responses item (data-URL images, base64 files) replaced by a text part saying what was shared. */
function withoutLargeInlineRaw(item: ResponseItem, maxBytes: number): ResponseItem {
  if (!isMessage(item) || !Array.isArray(item.content)) return item;
  let changed = false;
  const parts = item.content.map((part: any) => {
    const data = part?.type === 'input_image' ? part.image_url : part?.type === 'input_file' ? part.file_data : undefined;
    if (typeof data !== 'string' || data.length <= maxBytes || (part.type === 'input_image' && !data.startsWith('data:'))) return part;
    changed = true;
    const what =
      part.type === 'input_image' ? 'An image' : `A file${typeof part.filename === 'string' ? ` "${part.filename.slice(0, 100)}"` : ''}`;
    return {
      type: 'input_text',
      text: `[${what} was shared here (${Math.round(data.length / 1024)} KB); it is not kept in thread memory.]`,
    };
  });
  return changed ? { ...item, content: parts } : item;
}

export interface StorableItemOptions {
  redact: RedactOptions;
  maxInlineBytes: number;
}

/**
 * A Responses item as a thread item: the raw item (redacted, large inline data left out) for the
 * Responses API to send back, and its chat form (same rules) for thread memory, hashing and tokens.
 */
export function threadItemOf(
  item: ResponseItem,
  responseId: string | null,
  opts: StorableItemOptions,
  extra: Partial<NewItem> = {},
): NewItem {
  const raw = redactDeep(withoutLargeInlineRaw(item, opts.maxInlineBytes), opts.redact).value;
  const chat = chatFormOf(raw);
  if (chat) {
    const stored = withoutLargeInline(chat, opts.maxInlineBytes);
    return {
      kind: 'message',
      role: stored.role,
      content: stored.content ?? null,
      toolCalls: stored.tool_calls ?? null,
      toolCallId: stored.tool_call_id ?? null,
      contentHash: messageHash(stored),
      tokens: messageTokens(stored),
      status: 'complete',
      responseId,
      raw: JSON.stringify(raw),
      itemRef: typeof raw.id === 'string' ? raw.id.slice(0, 200) : null,
      ...extra,
    };
  }
  // Reasoning and built-in tool items: kept for the Responses API only (not chat messages).
  const summary = Array.isArray(raw.summary) ? raw.summary.map((s: any) => (typeof s?.text === 'string' ? s.text : '')).join('\n') : '';
  const text = JSON.stringify(raw);
  return {
    kind: raw.type === 'reasoning' ? 'reasoning' : 'item',
    role: null,
    content: summary || null,
    contentHash: messageHash({ role: String(raw.type ?? 'item'), content: text }),
    // Encrypted reasoning comes back to the model as input: counted by its size, as text would be.
    tokens: countTextTokens(summary) + Math.ceil(String(raw.encrypted_content ?? '').length / 4),
    status: 'complete',
    responseId,
    raw: text,
    itemRef: typeof raw.id === 'string' ? raw.id.slice(0, 200) : null,
    ...extra,
  };
}

/** Tokens of items as input (their chat form; others by their JSON size), for budgets and estimates. */
export function itemTokens(items: ResponseItem[]): number {
  let n = 0;
  for (const item of items) {
    const chat = chatFormOf(item);
    n += chat ? messageTokens(chat) : Math.ceil(JSON.stringify(item).length / 4);
  }
  return n;
}

/** Items in chat form (those that have one), for the admission estimate and abandoned-stream estimates. */
export function chatMessagesOf(items: ResponseItem[], instructions?: unknown): ChatMessage[] {
  const out: ChatMessage[] = [];
  if (typeof instructions === 'string' && instructions) out.push({ role: 'system', content: instructions });
  for (const item of items) {
    const chat = chatFormOf(item);
    if (chat) out.push(chat);
  }
  return out;
}

/**
 * An item as the input_items / conversation items APIs list it: with its id, `type`, and message
 * content as parts (OpenAI lists a string input as one `input_text` part).
 */
export function presentItem(id: string, item: ResponseItem): ResponseItem {
  if (isMessage(item)) {
    const role = String(item.role);
    const partType = role === 'assistant' ? 'output_text' : 'input_text';
    const content =
      typeof item.content === 'string' ? [{ type: partType, text: item.content }] : Array.isArray(item.content) ? item.content : [];
    return { ...item, type: 'message', id: typeof item.id === 'string' ? item.id : id, role, status: item.status ?? 'completed', content };
  }
  return { ...item, id: typeof item.id === 'string' ? item.id : id };
}

/** What makes two items the same turn: their chat form's hash (messages, calls, results), else their JSON without an id. */
function itemKey(item: ResponseItem): string {
  const chat = chatFormOf(item);
  if (chat) return messageHash(chat);
  const { id: _id, ...rest } = item;
  return JSON.stringify(rest);
}

/**
 * How many of `input`'s first items the stored history already ends with (a client re-sending its
 * history, whole or its last part): those are neither stored again nor sent twice. One repeated
 * item alone is a new turn (a user saying the same thing again), not a re-send.
 */
export function overlapWithHistory(history: ResponseItem[], input: ResponseItem[]): number {
  const max = Math.min(history.length, input.length);
  if (max === 0) return 0;
  const tail = history.slice(-max).map(itemKey);
  const head = input.slice(0, max).map(itemKey);
  for (let k = max; k >= 1; k--) {
    let same = true;
    for (let i = 0; i < k && same; i++) same = tail[max - k + i] === head[i];
    if (same && (k >= 2 || k < input.length)) return k;
  }
  return 0;
}
