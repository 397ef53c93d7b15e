import { z } from 'zod';
import { GatewayError, type ErrorCode } from '../errors.js';

/**
 * What a refused field answers: OpenAI's code and message for the value given (`undefined` when
 * absent), and the `param` when it is not the field's name (an element of it).
 */
export type FieldError = (value: unknown) => readonly [ErrorCode, string, string?];

// A registry of its own, not zod's global one: these never appear in the OpenAPI document.
const fieldErrors = z.registry<{ error: FieldError }>();

/** A body field the gateway reads, with the OpenAI-shaped error it answers when the field is wrong. */
export function field<T extends z.ZodType>(schema: T, error: FieldError): T {
  fieldErrors.add(schema, { error });
  return schema;
}

export const missing = (name: string) => ['missing_required_parameter', `Missing required parameter: '${name}'.`] as const;
export const invalid = (name: string, expected: string, param?: string) =>
  ['invalid_value', `Invalid value for '${name}': ${expected}.`, param] as const;

/** A required field: "missing" when absent or null, "invalid" otherwise. */
export const required =
  (name: string, expected: string): FieldError =>
  (value) =>
    value === undefined || value === null ? missing(name) : invalid(name, expected);

/** An optional field (null counts as absent): "invalid" when given a wrong value. */
export const optional =
  (name: string, expected: string): FieldError =>
  () =>
    invalid(name, expected);

/**
 * A JSON array of at least `minItems`, checked without visiting its elements: the gateway reads
 * only that it is one (the upstream checks the elements), and a chat request may carry thousands of
 * messages (a zod array visits each: ~10 ns and two allocations apiece). Documented as `items`.
 */
export function jsonArray(doc: { minItems?: number; items: Record<string, unknown>; description?: string }) {
  const min = doc.minItems ?? 0;
  return z
    .unknown()
    .refine((v) => Array.isArray(v) && v.length >= min)
    .meta({ type: 'array', ...doc });
}

/** Any JSON value but null (a field the gateway requires and the upstream checks). */
export function present(doc: Record<string, unknown>) {
  return z
    .unknown()
    .refine((v) => v !== undefined && v !== null)
    .meta({ not: { type: 'null' }, ...doc });
}

/** The chat message, as documented: the gateway passes messages on as given (the upstream checks them). */
export const CHAT_MESSAGE_DOC = {
  description:
    'A chat message as OpenAI defines it: `{role, content}` (`system`, `developer`, `user`, `assistant` with optional `tool_calls`, `tool` with `tool_call_id`). Passed to the upstream as given.',
  examples: [{ role: 'user', content: 'Say hello' }],
};

/** A schema's JSON Schema (draft 2020-12, OpenAPI 3.1's dialect) as a client sends it, without `$schema`: to nest in a document. */
export function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _omit, ...rest } = z.toJSONSchema(schema, { io: 'input' });
  return rest;
}

/** A refinement that runs even when fields already failed (zod skips it then by default), so the field order decides. */
export const always = { when: () => true } as const;

/**
 * Checks a request body against a loose object schema of the fields the gateway reads (every other
 * field passes through untouched, so the parsed copy is not used) and throws the error of the first
 * refused field, in the schema's field order: the order the gateway has always checked them in.
 */
export function checkBody(schema: z.ZodObject, body: Record<string, unknown>): void {
  const result = schema.safeParse(body);
  if (result.success) return;
  const names = Object.keys(schema.shape);
  let first = result.error.issues[0];
  let rank = Infinity;
  for (const issue of result.error.issues) {
    const at = names.indexOf(String(issue.path[0]));
    const r = at === -1 ? names.length : at;
    if (r < rank) [rank, first] = [r, issue];
  }
  const name = first.path.length ? String(first.path[0]) : '';
  const rule = name ? fieldErrors.get(schema.shape[name] as z.ZodType) : undefined;
  if (!rule) throw new GatewayError('invalid_value', `${name || 'body'}: ${first.message}`, name ? { param: name } : {});
  const [code, message, param] = rule.error(body[name]);
  throw new GatewayError(code, message, { param: param ?? name });
}
