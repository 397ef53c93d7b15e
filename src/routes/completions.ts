import { z } from 'zod';
import { checkBody, field, missing, optional, present } from './body-schema.js';
import { createChatStreamTap, type ChatStreamTap } from '../proxy/chat-stream-tap.js';
import { parseUsage } from '../proxy/outcome.js';
import type { AppContext, AppDeps } from './context.js';
import { runProxy } from './proxy-pipeline.js';
import { readJsonObject } from './read-json.js';

/** The prompt as text for estimates: a string, strings, or (tokenized) arrays counted by length. */
function promptText(prompt: unknown): string {
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt))
    return prompt.map((p) => (typeof p === 'string' ? p : Array.isArray(p) ? ' '.repeat(p.length * 4) : '')).join('\n');
  return '';
}

/** The fields of a legacy completion request the gateway reads; the rest passes through untouched. */
export const completionRequest = z.object({
  model: field(z.string().regex(/\S/).meta({ description: 'Model id.' }), () => missing('model')),
  prompt: field(
    present({ description: 'A string, an array of strings, or token arrays (checked by the upstream).', examples: ['Say hello'] }),
    () => missing('prompt'),
  ),
  stream: field(
    z.boolean().nullish().meta({ description: 'Stream the answer as server-sent events.' }),
    optional('stream', 'expected a boolean'),
  ),
});

/**
 * `POST /v1/completions` (legacy text completions): a pass-through, stream and non-stream, with its
 * usage recorded. Its stream is chat's framing (`data:` chunks, a usage chunk, [DONE]) with `text`
 * in place of `delta`.
 */
export function completions(deps: AppDeps) {
  return async (c: AppContext) => {
    const { body, raw } = await readJsonObject(c, deps.config.maxBodyBytes);
    checkBody(completionRequest, body);
    const stream = body.stream === true;
    c.get('logFields').model = body.model;
    const askedUsage = body.stream_options?.include_usage === true || body.usage?.include === true;
    // The gateway always asks for usage on streams (the ledger needs it); the client sees it only if it asked.
    const forwarded =
      stream && !askedUsage
        ? { ...body, stream_options: { ...(typeof body.stream_options === 'object' ? body.stream_options : {}), include_usage: true } }
        : body;
    const estimateBody = {
      model: body.model,
      messages: [{ role: 'user', content: promptText(body.prompt) }],
      max_tokens: body.max_tokens ?? 16,
      n: body.n,
    };
    return runProxy<ChatStreamTap>(c, deps, {
      route: 'completions',
      path: '/completions',
      requestedModel: body.model,
      stream,
      upstreamBody: forwarded === body ? raw : JSON.stringify(forwarded),
      estimateBody,
      outcomeRequest: estimateBody,
      listField: 'choices',
      readReply: (json) => ({
        usage: parseUsage(json.usage),
        servedModel: typeof json.model === 'string' ? json.model : null,
        generationId: typeof json.id === 'string' ? json.id : null,
        finishReason: json.choices?.[0]?.finish_reason ?? null,
        provider: typeof json.provider === 'string' ? json.provider : null,
        text: typeof json.choices?.[0]?.text === 'string' ? json.choices[0].text : '',
      }),
      createTap: () => createChatStreamTap({ includeUsage: askedUsage, maxKeptChars: deps.config.memoryMaxReplyBytes }),
      streamFacts: (tap) => {
        const s = tap.complete(false);
        return {
          usage: s.usage,
          servedModel: s.servedModel,
          generationId: s.generationId,
          finishReason: s.finishReason,
          provider: s.provider,
        };
      },
    });
  };
}
