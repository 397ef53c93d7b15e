import { z } from 'zod';
import { jsonSchemaOf } from '../body-schema.js';
import { threadIdSchema } from '../thread-params.js';
import { REQUEST_HEADERS, RESOURCES, RESPONSE_HEADERS, SECURITY_SCHEMES } from './components.js';
import { OPERATIONS, TAGS, type Operation } from './operations.js';

type Json = Record<string, unknown>;
const ref = (kind: string, name: string) => ({ $ref: `#/components/${kind}/${name}` });

/** Path parameters by name: ids the routes check (thread ids) or look up as given. */
const PATH_PARAMS: Record<string, { description: string; schema: z.ZodType }> = {
  thread: { description: 'The thread every request under this base URL joins.', schema: threadIdSchema },
  workspace: { description: 'A workspace name or id.', schema: z.string() },
  thread_id: { description: 'A thread id.', schema: threadIdSchema },
  conversation_id: { description: 'A conversation id (`conv_…`, or any thread id of the workspace).', schema: threadIdSchema },
  item_id: { description: 'An item id.', schema: z.string() },
  response_id: { description: 'A response id (`resp_…`).', schema: z.string() },
  key_id: { description: 'A key id (`key_…`).', schema: z.string() },
  model: { description: 'A model id; it may hold slashes, sent as they are (`/v1/models/openai/gpt-4o-mini`).', schema: z.string() },
};

/** Error answers by status, each in OpenAI's shape. */
const ERRORS: Record<string, string> = {
  BadRequest: 'Invalid request: `invalid_json`, `missing_required_parameter`, `invalid_value` (with `param`), `context_length_exceeded`, …',
  Unauthorized: 'A missing, unknown, expired or revoked key or admin token (`invalid_api_key`).',
  Forbidden: "The key's scopes do not allow this route (`permission_denied`).",
  NotFound: "No such resource in the caller's workspace (`not_found`), or an unknown route (`unknown_url`).",
  PayloadTooLarge: 'The body is over MAX_BODY_BYTES (`request_too_large`).',
  UnsupportedMediaType: 'The body is not `application/json` (`unsupported_media_type`).',
  RateLimited:
    "Over the key's requests or tokens per minute (`rate_limit_exceeded`) or its budget (`insufficient_quota`); see `retry-after`.",
  BadGateway: 'The upstream failed (`upstream_error`, `server_error`, `upstream_auth_failed`, …).',
  Unavailable:
    'The upstream, the database, or the admin API is unavailable (`upstream_not_configured`, `upstream_unavailable`, `service_unavailable`, `admin_disabled`).',
  GatewayTimeout: 'The upstream did not answer in time (`upstream_timeout`).',
};

function errorResponses(op: Operation): Json {
  const out: Json = {};
  const add = (status: number, name: keyof typeof ERRORS) => (out[status] = ref('responses', name));
  if (op.body || op.query || op.thread || op.path.includes('{')) add(400, 'BadRequest');
  if (op.auth !== 'none') add(401, 'Unauthorized');
  if (op.auth === 'key' || op.auth === 'reports') add(403, 'Forbidden');
  if (op.path.includes('{') || op.auth === 'reports') add(404, 'NotFound');
  if (op.body) {
    add(413, 'PayloadTooLarge');
    add(415, 'UnsupportedMediaType');
  }
  if (op.proxied) {
    add(429, 'RateLimited');
    add(502, 'BadGateway');
    add(504, 'GatewayTimeout');
  }
  if (op.proxied || op.auth !== 'none') add(503, 'Unavailable');
  return out;
}

function success(op: Operation): Json {
  const headers: Json = { 'x-request-id': ref('headers', 'x-request-id') };
  if (op.thread)
    Object.assign(headers, { 'x-thread-id': ref('headers', 'x-thread-id'), 'x-memory-status': ref('headers', 'x-memory-status') });
  if (op.proxied) {
    for (const name of Object.keys(RESPONSE_HEADERS)) if (name.startsWith('x-ratelimit-')) headers[name] = ref('headers', name);
  }
  const content: Json = {};
  if (op.ok.type) content[op.ok.type] = { schema: { type: 'string' } };
  else content['application/json'] = { schema: op.ok.resource ? ref('schemas', op.ok.resource) : { type: 'object' } };
  if (op.ok.stream) {
    content['text/event-stream'] = {
      schema: {
        type: 'string',
        description:
          'With `stream: true`: server-sent events as the upstream sends them, ending with `data: [DONE]` (chat, completions) or the terminal event (responses); an error after the stream started is one error event, then the end.',
      },
    };
  }
  if (op.ok.csv) content['text/csv'] = { schema: { type: 'string', description: 'With `format=csv`: the same columns, one header row.' } };
  return { description: op.ok.status === 201 ? 'Created' : 'OK', headers, content };
}

function parameters(op: Operation): Json[] {
  const out: Json[] = [];
  for (const [, name] of op.path.matchAll(/\{(\w+)\}/g)) {
    const p = PATH_PARAMS[name];
    if (!p) throw new Error(`OpenAPI: no description of the path parameter {${name}} (${op.path})`);
    out.push({ name, in: 'path', required: true, description: p.description, schema: jsonSchemaOf(p.schema) });
  }
  for (const [name, schema] of Object.entries(op.query ?? {})) {
    const { description, ...rest } = jsonSchemaOf(schema);
    out.push({ name, in: 'query', required: false, ...(description ? { description } : {}), schema: rest });
  }
  if (op.thread) out.push(ref('parameters', 'XThreadId'), ref('parameters', 'XMemory'), ref('parameters', 'XMemoryMaxTokens'));
  else if (op.path.endsWith('/context')) out.push(ref('parameters', 'XMemoryMaxTokens'));
  if (op.auth !== 'none') out.push(ref('parameters', 'XRequestId'));
  return out;
}

const SECURITY: Record<Operation['auth'], Json[]> = {
  key: [{ gatewayKey: ['proxy'] }],
  reports: [{ adminToken: [] }, { gatewayKey: ['reports'] }, { consoleSession: [] }],
  admin: [{ adminToken: [] }, { consoleSession: [] }],
  none: [],
};

const operationId = (op: Operation) =>
  `${op.method}${op.path
    .split(/[/._{}-]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('')}`;

/** The OpenAPI 3.1 document of the gateway's own API, built from the routes' schemas. */
export function buildOpenApiDocument(version: string): Json {
  const paths: Record<string, Json> = {};
  const schemas: Record<string, Json> = {};
  for (const [name, schema] of Object.entries(RESOURCES)) schemas[name] = jsonSchemaOf(schema);
  for (const op of OPERATIONS) {
    const operation: Json = { operationId: operationId(op), tags: [op.tag], summary: op.summary };
    if (op.description) operation.description = op.description;
    const params = parameters(op);
    if (params.length) operation.parameters = params;
    if (op.body) {
      schemas[op.body.name] = jsonSchemaOf(op.body.schema);
      operation.requestBody = { required: true, content: { 'application/json': { schema: ref('schemas', op.body.name) } } };
    }
    operation.responses = { [op.ok.status]: success(op), ...errorResponses(op) };
    operation.security = SECURITY[op.auth];
    (paths[op.path] ??= {})[op.method] = operation;
  }
  const errorResponse = (description: string) => ({
    description,
    headers: {
      'x-request-id': ref('headers', 'x-request-id'),
      'x-should-retry': ref('headers', 'x-should-retry'),
      'retry-after': ref('headers', 'retry-after'),
    },
    content: { 'application/json': { schema: ref('schemas', 'Error') } },
  });
  return {
    openapi: '3.1.1',
    info: {
      title: 'Context Memory Gateway',
      version,
      summary: 'An OpenAI-compatible gateway in front of OpenRouter, with thread memory and a usage ledger.',
      description:
        'Apps written for the OpenAI API change only their base URL (`https://gateway/v1`) and key. The proxied routes forward every field untouched except the gateway\'s own; the schemas here list the fields the gateway reads and checks, with the other fields left open. Any request joins a thread with `X-Thread-Id`, `metadata.thread_id`, or the base URL `/t/{thread}/v1` (the whole /v1 API again). Errors are always OpenAI-shaped: `{"error":{"message","type","param","code"}}`.',
      license: { name: 'UNLICENSED', identifier: 'UNLICENSED' },
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    servers: [{ url: '/', description: 'This gateway' }],
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
    paths,
    components: {
      schemas,
      responses: Object.fromEntries(Object.entries(ERRORS).map(([name, description]) => [name, errorResponse(description)])),
      parameters: REQUEST_HEADERS,
      headers: RESPONSE_HEADERS,
      securitySchemes: SECURITY_SCHEMES,
    },
  };
}
