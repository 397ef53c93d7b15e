/**
 * The JSON of a chat body whose messages include stored history, as bytes: each stored message's
 * JSON is encoded once and reused by every request that injects it (the cached view's messages
 * are frozen and shared), the rest is serialized per request. A request on a long thread forwards
 * the same ~300 stored messages again and again: serializing them every time cost ~0.2 ms of CPU
 * and ~150 KB of short-lived strings and buffers per request. The bytes are those
 * `JSON.stringify(body)` would give.
 */

const encoded = new WeakMap<object, Buffer>();

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
  // The text before and after the messages' array, and each message's bytes; then one buffer.
  let before = '';
  let head = '{';
  let first = true;
  for (const key of Object.keys(body)) {
    if (key === 'messages') {
      before = `${head}${first ? '' : ','}${JSON.stringify(key)}:[`;
      head = '';
      first = false;
      continue;
    }
    const json = JSON.stringify(body[key]);
    if (json === undefined) continue; // what JSON.stringify leaves out (undefined, functions)
    head += `${first ? '' : ','}${JSON.stringify(key)}:${json}`;
    first = false;
  }
  const after = `]${head}}`;
  const bytes = new Array<Buffer>(messages.length);
  let total = Buffer.byteLength(before) + Buffer.byteLength(after) + Math.max(0, messages.length - 1);
  for (let i = 0; i < messages.length; i++) total += (bytes[i] = messageBytes(messages[i])).length;
  const out = Buffer.allocUnsafe(total);
  let at = out.write(before, 0);
  for (let i = 0; i < bytes.length; i++) {
    if (i > 0) out[at++] = 0x2c; // ,
    at += bytes[i].copy(out, at);
  }
  out.write(after, at);
  return out;
}
