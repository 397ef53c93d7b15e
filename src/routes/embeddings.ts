import { z } from 'zod';
import { checkBody, field, missing, present } from './body-schema.js';
import { parseUsage } from '../proxy/outcome.js';
import type { AppContext, AppDeps } from './context.js';
import { runProxy } from './proxy-pipeline.js';
import { readJsonObject } from './read-json.js';

/** The fields of an embedding request the gateway reads; the rest passes through untouched. */
export const embeddingRequest = z.object({
  model: field(z.string().min(1).meta({ description: 'Embedding model id, e.g. `openai/text-embedding-3-small`.' }), () =>
    missing('model'),
  ),
  input: field(
    present({
      description: 'A string or an array of strings (or token arrays) to embed (checked by the upstream).',
      examples: ['The food was delicious'],
    }),
    () => missing('input'),
  ),
});

/** `POST /v1/embeddings`: a pass-through whose usage is recorded. */
export function embeddings(deps: AppDeps) {
  return async (c: AppContext) => {
    const { body, raw } = await readJsonObject(c, deps.config.maxBodyBytes);
    checkBody(embeddingRequest, body);
    c.get('logFields').model = body.model;
    return runProxy(c, deps, {
      route: 'embeddings',
      path: '/embeddings',
      requestedModel: body.model,
      stream: false,
      upstreamBody: raw,
      estimateBody: body,
      outcomeRequest: null,
      listField: 'data',
      readReply: (json) => ({
        usage: parseUsage(json.usage),
        servedModel: typeof json.model === 'string' ? json.model : null,
        generationId: null,
      }),
    });
  };
}
