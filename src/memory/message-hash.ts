import { createHash } from 'node:crypto';

/** A chat message as clients send it (the fields memory reads; the rest passes through). */
export interface ChatMessage {
  role: string;
  content?: unknown;
  name?: string;
  tool_calls?: { id?: string; type?: string; function?: { name?: string; arguments?: string } }[];
  tool_call_id?: string;
  [extra: string]: unknown;
}

/**
 * Content in one canonical form: a string, or the parts array when it holds more than text.
 * `"hi"` and `[{"type":"text","text":"hi"}]` are the same message; null and "" too; an image part
 * with `detail: "auto"` (the default) and one without, or with its URL as a bare string, too.
 */
export function canonicalContent(content: unknown): unknown {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    const allText = content.every((p) => p && typeof p === 'object' && p.type === 'text' && typeof p.text === 'string');
    return allText ? content.map((p) => p.text).join('') : content.map(canonicalPart);
  }
  return content;
}

function canonicalPart(part: any): unknown {
  if (!part || typeof part !== 'object') return part;
  if (part.type === 'text' && typeof part.text === 'string') return { type: 'text', text: part.text };
  if (part.type === 'image_url') {
    const image = typeof part.image_url === 'string' ? { url: part.image_url } : (part.image_url ?? {});
    const detail = image.detail && image.detail !== 'auto' ? image.detail : undefined;
    return { type: 'image_url', url: image.url, ...(detail ? { detail } : {}) };
  }
  return part;
}

/**
 * The content hash that recognizes a message the thread already holds. It covers what makes two
 * messages the same turn (role, content, tool calls, tool result id, name) and nothing else.
 */
export function messageHash(m: ChatMessage): string {
  const calls = Array.isArray(m.tool_calls)
    ? m.tool_calls.map((c) => [c.id ?? '', c.function?.name ?? '', c.function?.arguments ?? ''])
    : [];
  const canonical = JSON.stringify([m.role, canonicalContent(m.content), calls, m.tool_call_id ?? '', m.name ?? '']);
  return createHash('sha256').update(canonical).digest('base64url');
}
