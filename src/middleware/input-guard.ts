import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { GatewayError } from '../errors.js';
import type { AppEnv } from '../routes/context.js';

/**
 * Characters no path or query parameter may hold once decoded: the C0 controls except tab, and DEL.
 * NUL is the one that matters most (Postgres refuses it in text, which was a 500); the rest have no
 * use in an id, a date or a filter and only make logs and CSV exports ambiguous.
 */
// eslint-disable-next-line no-control-regex -- control characters are what this refuses
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/**
 * Refuses URLs whose path or query parameters do not decode to clean text, with a 400 naming the
 * parameter, before any route (or database) sees them: malformed or non-UTF-8 percent-encoding
 * (Hono's own decoding would pass such text on raw; this includes encoded lone surrogates), and the
 * characters in CONTROL. A raw control character cannot get here: Node's HTTP parser refuses it, and
 * the URL parser percent-encodes it, so a URL without `%` is clean and costs one indexOf.
 */
export const inputGuard = (): MiddlewareHandler<AppEnv> => (c, next) => {
  const url = c.req.url;
  if (url.indexOf('%') !== -1) checkUrl(c, url);
  return next();
};

function checkUrl(c: Context, url: string): void {
  const start = url.indexOf('/', url.indexOf('://') + 3);
  const hash = url.indexOf('#', start);
  const end = hash === -1 ? url.length : hash;
  const query = url.indexOf('?', start);
  const pathEnd = query === -1 || query > end ? end : query;
  const segments = url.slice(start, pathEnd).split('/');
  for (let i = 0; i < segments.length; i++) {
    if (!clean(segments[i], false)) throw refused(pathParamName(c, i), 'path');
  }
  if (pathEnd === end) return;
  for (const pair of url.slice(pathEnd + 1, end).split('&')) {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? pair : pair.slice(0, eq);
    if (!clean(name, true)) throw refused(name || null, 'query');
    if (eq !== -1 && !clean(pair.slice(eq + 1), true)) throw refused(decode(name, true) || null, 'query');
  }
}

/** Whether a raw URL component decodes (strictly, as UTF-8) to text without control characters. */
function clean(raw: string, form: boolean): boolean {
  if (raw.indexOf('%') === -1) return true;
  const text = decode(raw, form);
  return text !== null && !CONTROL.test(text);
}

function decode(raw: string, form: boolean): string | null {
  try {
    return decodeURIComponent(form ? raw.replaceAll('+', ' ') : raw);
  } catch {
    return null;
  }
}

function refused(name: string | null, where: 'path' | 'query'): GatewayError {
  const what = name ? `'${name}'` : `the ${where}`;
  return new GatewayError(
    'invalid_value',
    `Invalid value in ${what}: percent-encoding must be valid UTF-8, without NUL or other control characters.`,
    { param: name ?? undefined },
  );
}

/**
 * The name of the route parameter at path segment `index` (`/t/:thread/v1/threads/:id`), from the
 * most specific route that matched; `path` when no route names that segment.
 */
function pathParamName(c: Context, index: number): string {
  const routes = matchedRoutes(c);
  for (let r = routes.length - 1; r >= 0; r--) {
    const pattern = routes[r].path.split('/');
    let segment: string | undefined = pattern[index];
    // `:id{.+}` may span several segments: it names everything from its own on.
    if (segment === undefined && pattern.at(-1)?.includes('{')) segment = pattern.at(-1);
    if (segment?.startsWith(':')) return segment.slice(1).replace(/\{.*$/, '').replace(/\?$/, '');
  }
  return 'path';
}
