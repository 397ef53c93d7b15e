/**
 * `npx tsx bench/validation.ts`: the CPU that validating a chat completion body costs, alone, many
 * iterations: the zod schema the route checks (`chatCompletionRequest` through `checkBody`) against
 * the hand validation it replaced (kept here as the reference), on the body `npm run bench` sends
 * and on a 200-message one. Also a loose-object variant of the schema, to show why the route's is a
 * plain object (its parsed copy is never used: the body goes upstream as received).
 */
import { z } from 'zod';
import { GatewayError } from '../src/errors.js';
import { checkBody } from '../src/routes/body-schema.js';
import { chatCompletionRequest } from '../src/routes/chat-completions.js';

function handValidation(body: Record<string, any>) {
  if (body.models !== undefined && body.models !== null) {
    const models = body.models;
    if (!Array.isArray(models) || models.length === 0 || !models.every((m) => typeof m === 'string' && m.trim())) {
      throw new GatewayError('invalid_value', "Invalid value for 'models': expected a non-empty array of non-empty strings.", {
        param: 'models',
      });
    }
  }
  if ((body.model === undefined || body.model === null) && !Array.isArray(body.models)) {
    throw new GatewayError('missing_required_parameter', "Missing required parameter: 'model'.", { param: 'model' });
  }
  if (body.model !== undefined && body.model !== null && (typeof body.model !== 'string' || !body.model.trim())) {
    throw new GatewayError('invalid_value', "Invalid value for 'model': expected a non-empty string.", { param: 'model' });
  }
  if (body.messages === undefined || body.messages === null) {
    throw new GatewayError('missing_required_parameter', "Missing required parameter: 'messages'.", { param: 'messages' });
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw new GatewayError('invalid_value', "Invalid value for 'messages': expected a non-empty array.", { param: 'messages' });
  }
  if (body.stream !== undefined && typeof body.stream !== 'boolean' && body.stream !== null) {
    throw new GatewayError('invalid_value', "Invalid value for 'stream': expected a boolean.", { param: 'stream' });
  }
}

const looseVariant = z.looseObject(chatCompletionRequest.shape);

const ROUNDS = 7;
const PER_ROUND = 500_000;

/** Median and best of ROUNDS rounds, in ns per call (CPU time of this process). */
function measure(fn: () => void): { median: number; best: number } {
  for (let i = 0; i < 200_000; i++) fn(); // JIT
  const perCall: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < PER_ROUND; i++) fn();
    const used = process.cpuUsage(t0);
    perCall.push(((used.user + used.system) * 1000) / PER_ROUND);
  }
  perCall.sort((a, b) => a - b);
  return { median: perCall[ROUNDS >> 1], best: perCall[0] };
}

const msgs = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello' },
];
// Bodies as the route has them: straight from JSON.parse.
const benchBody = JSON.parse(
  JSON.stringify({ model: 'openai/gpt-4o-mini', messages: msgs, max_tokens: 32, stream: true, stream_options: { include_usage: true } }),
);
const longBody = JSON.parse(
  JSON.stringify({
    ...benchBody,
    messages: Array.from({ length: 200 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i}` })),
  }),
);

const fmt = (r: { median: number; best: number }) => `${(r.median / 1000).toFixed(3)} µs (best ${(r.best / 1000).toFixed(3)})`;
console.log(`CPU per call, median of ${ROUNDS} rounds of ${PER_ROUND.toLocaleString()} calls`);
for (const [label, body] of [
  ['bench body (2 messages)', benchBody],
  ['200 messages', longBody],
] as const) {
  console.log(`${label}:`);
  console.log(`  hand validation         ${fmt(measure(() => handValidation(body)))}`);
  console.log(`  zod, the route's schema ${fmt(measure(() => checkBody(chatCompletionRequest, body)))}`);
  console.log(`  zod, as a loose object  ${fmt(measure(() => checkBody(looseVariant, body)))}`);
}
