import type { ChatMessage } from './message-hash.js';

/**
 * What memory keeps of large inline data: an image (or audio, or file) sent as a data URL or
 * base64 larger than `maxBytes` is not stored, and so never re-sent on later turns; the stored
 * message keeps a text part saying what was shared instead. Messages without such data come back
 * as they were (the same object).
 */
export function withoutLargeInline(m: ChatMessage, maxBytes: number): ChatMessage {
  if (!Array.isArray(m.content)) return m;
  let changed = false;
  const parts = m.content.map((part: any) => {
    const placeholder = placeholderFor(part, maxBytes);
    if (placeholder === null) return part;
    changed = true;
    return { type: 'text', text: placeholder };
  });
  return changed ? { ...m, content: parts } : m;
}

function placeholderFor(part: any, maxBytes: number): string | null {
  if (!part || typeof part !== 'object') return null;
  if (part.type === 'image_url') {
    const url = typeof part.image_url === 'string' ? part.image_url : part.image_url?.url;
    if (typeof url === 'string' && url.startsWith('data:') && url.length > maxBytes) {
      return `[An image was shared here (${mediaType(url) ?? 'image'}, ${kb(url.length)}); it is not kept in thread memory.]`;
    }
    return null;
  }
  if (part.type === 'input_audio' && typeof part.input_audio?.data === 'string' && part.input_audio.data.length > maxBytes) {
    return `[Audio was shared here (${part.input_audio.format ?? 'audio'}, ${kb(part.input_audio.data.length)}); it is not kept in thread memory.]`;
  }
  if (part.type === 'file' && typeof part.file?.file_data === 'string' && part.file.file_data.length > maxBytes) {
    const name = typeof part.file.filename === 'string' ? ` "${part.file.filename.slice(0, 100)}"` : '';
    return `[A file${name} was shared here (${kb(part.file.file_data.length)}); it is not kept in thread memory.]`;
  }
  return null;
}

const mediaType = (url: string) => /^data:([\w.+-]+\/[\w.+-]+)[;,]/.exec(url)?.[1];
const kb = (n: number) => `${Math.round(n / 1024)} KB`;
