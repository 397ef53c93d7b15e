import { GatewayError, UpstreamHttpError } from '../errors.js';
import type { AppContext, AppDeps } from './context.js';

/** `GET /v1/models`: the upstream catalog in OpenAI's list shape, cached. */
export function listModels(deps: AppDeps) {
  return async (c: AppContext) => {
    try {
      const snapshot = await deps.catalog.get();
      return c.json(snapshot.list);
    } catch (err) {
      if (err instanceof GatewayError || err instanceof UpstreamHttpError) throw err;
      throw new GatewayError('upstream_unavailable', 'The model catalog could not be fetched from the upstream.', { cause: err });
    }
  };
}

/** `GET /v1/models/{id}`: one catalog entry, or 404. */
export function getModel(deps: AppDeps) {
  return async (c: AppContext) => {
    const id = c.req.param('id') ?? '';
    const snapshot = await deps.catalog.get();
    const model = snapshot.list.data.find((m) => m.id === id);
    if (!model) throw new GatewayError('not_found', `The model '${id}' does not exist.`, { param: 'model' });
    return c.json(model);
  };
}
