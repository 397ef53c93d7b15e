/**
 * The JSON of a chat body whose messages include stored history, as bytes: each stored message's
 * JSON is encoded once and reused by every request that injects it (the cached view's messages
 * are frozen and shared), the rest is serialized per request. A request on a long thread forwards
 * the same ~300 stored messages again and again: serializing them every time cost ~0.2 ms of CPU
 * and ~150 KB of short-lived strings and buffers per request. The bytes are those
 * `JSON.stringify(body)` would give.
 */

const encoded = new WeakMap<object, Buffer>();
const COMMA = Buffer.from(',');
const OPEN_ARRAY = Buffer.from('[');
const CLOSE_ARRAY = Buffer.from(']');

/** A message's JSON bytes: cached for frozen (shared, stored) messages, fresh for the client's own. */
function messageBytes(m: unknown): Buffer {
  if (m === null || typeof m !== 'object') return Buffer.from(JSON.stringify(m) ?? 'null');
  if (!Object.isFrozen(m)) return Buffer.from(JSON.stringify(m));
  let bytes = encoded.get(m);
  if (!bytes) encoded.set(m, (bytes = Buffer.from(JSON.stringify(m))));
  return bytes;
}

/** `Buffer.from(JSON.stringify(body))`, with the messages' JSON taken from the cache where it can be. */
export function forwardedJson(body: Record<string, unknown>): Buffer {
  const messages = body.messages;
  if (!Array.isArray(messages)) return Buffer.from(JSON.stringify(body));
  const parts: Buffer[] = [];
  let head = '{';
  let first = true;
  for (const key of Object.keys(body)) {
    const value = body[key];
    if (key === 'messages') {
      parts.push(Buffer.from(`${head}${first ? '' : ','}${JSON.stringify(key)}:`), OPEN_ARRAY);
      messages.forEach((m, i) => {
        if (i > 0) parts.push(COMMA);
        parts.push(messageBytes(m));
      });
      parts.push(CLOSE_ARRAY);
      head = '';
      first = false;
      continue;
    }
    const json = JSON.stringify(value);
    if (json === undefined) continue; // what JSON.stringify leaves out (undefined, functions)
    head += `${first ? '' : ','}${JSON.stringify(key)}:${json}`;
    first = false;
  }
  parts.push(Buffer.from(`${head}}`));
  return Buffer.concat(parts);
}
