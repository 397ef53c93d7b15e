import { GatewayError } from '../errors.js';
import { parseUsage } from '../proxy/outcome.js';
import type { AppContext, AppDeps } from './context.js';
import { runProxy } from './proxy-pipeline.js';
import { readJsonObject } from './read-json.js';

/** `POST /v1/embeddings`: a pass-through whose usage is recorded. */
export function embeddings(deps: AppDeps) {
  return async (c: AppContext) => {
    const { body, raw } = await readJsonObject(c, deps.config.maxBodyBytes);
    if (typeof body.model !== 'string' || !body.model) {
      throw new GatewayError('missing_required_parameter', "Missing required parameter: 'model'.", { param: 'model' });
    }
    if (body.input === undefined || body.input === null) {
      throw new GatewayError('missing_required_parameter', "Missing required parameter: 'input'.", { param: 'input' });
    }
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
      readReply: (json) => ({ usage: parseUsage(json.usage), servedModel: typeof json.model === 'string' ? json.model : null, generationId: null }),
    });
  };
}
