import { GatewayError, UpstreamHttpError } from '../errors.js';
import { classifyFailure, pickUpstreamHeaders, readUpstreamBody, relayedHeaders, startForward, upstreamJson } from '../proxy/forward.js';
import { parseUsage } from '../proxy/outcome.js';
import type { AppContext, AppDeps } from './context.js';
import { admitRequest } from './admission.js';
import { outcomeEmitter } from './outcome-emitter.js';
import { clientSignalOf, readJsonObject } from './read-json.js';
import { sendJson } from './response-headers.js';

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
    const t0 = c.get('startedAt');
    const clientSignal = clientSignalOf(c);
    const outcome = outcomeEmitter(c, deps, { route: 'embeddings', requestedModel: body.model, stream: false, request: null });
    await admitRequest(c, deps, outcome, body);
    const handle = startForward(clientSignal, deps.config.upstreamTimeoutMs);
    let text: string;
    let upstreamHeadersMs: number;
    let res;
    try {
      res = await deps.upstream.send({
        path: '/embeddings',
        method: 'POST',
        body: raw,
        headers: pickUpstreamHeaders((n) => c.req.header(n), c.get('requestId')),
        signal: handle.signal,
        onDispatch: handle.dispatched,
      });
      upstreamHeadersMs = performance.now() - t0;
      text = await readUpstreamBody(res.body, deps.config.upstreamMaxBodyBytes);
    } catch (err) {
      const failure = classifyFailure(err, handle, clientSignal, res !== undefined);
      const errorCode = failure.error instanceof GatewayError ? failure.error.code : failure.error instanceof UpstreamHttpError ? failure.error.body.error.code : null;
      outcome({ status: failure.status, httpStatus: failure.httpStatus, errorCode });
      throw failure.error;
    } finally {
      handle.settle();
    }
    const { json, error } = upstreamJson(text, 'data');
    if (error) {
      outcome({ status: 'upstream_error', httpStatus: 502, errorCode: error.body.error.code, upstreamHeadersMs });
      throw error;
    }
    // The answer goes out first; the outcome (ledger, log) is recorded after it.
    const sent = sendJson(c, text, relayedHeaders(res));
    outcome({
      status: 'ok',
      httpStatus: 200,
      usage: parseUsage(json.usage),
      servedModel: typeof json.model === 'string' ? json.model : null,
      upstreamHeadersMs,
      firstByteMs: performance.now() - t0,
    });
    return sent;
  };
}
