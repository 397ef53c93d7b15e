import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Hono } from 'hono';
import type { AppContext, AppEnv } from './context.js';
import { buildOpenApiDocument } from './openapi/document.js';
import { PAGE_HEADERS, docsPage, landingInfo, landingPage } from './openapi/pages.js';

/** The package's version (package.json sits two levels up from src/routes and dist/routes alike). */
function packageVersion(): string {
  try {
    return String(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
  } catch {
    return '0.0.0';
  }
}

/** The q-value the Accept header gives a media type: from its most specific matching range (RFC 9110 §12.5.1). */
function quality(accept: string, type: string): number {
  const [major] = type.split('/');
  let best = -1;
  let q = 0;
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part.trim().toLowerCase().split(';');
    const specificity = range === type ? 2 : range === `${major}/*` ? 1 : range === '*/*' ? 0 : -1;
    if (specificity <= best) continue;
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const value = qParam ? Number(qParam.slice(2)) : 1;
    best = specificity;
    q = Number.isFinite(value) ? value : 0;
  }
  return q;
}

/** A browser (text/html preferred over JSON) gets the page; API clients, and a tie, get JSON. */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  return quality(accept, 'text/html') > quality(accept, 'application/json');
}

const etagOf = (body: string) => `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;

/** `GET /openapi.json`, `GET /docs` and `GET /`: public, no key (they describe the API, never its data). */
export function apiDocsRoutes() {
  const version = packageVersion();
  // Built on first use (~20 ms of zod-to-JSON-Schema work that a start, or a test's app, need not wait for).
  let built: { json: string; docs: string } | undefined;
  const document = () => {
    if (!built) {
      const json = JSON.stringify(buildOpenApiDocument(version));
      built = { json, docs: docsPage(JSON.parse(json)) };
    }
    return built;
  };
  const landing = landingPage(version);
  const info = landingInfo(version);
  const api = new Hono<AppEnv>();

  const cached = (c: AppContext, body: string, type: string) => {
    const etag = etagOf(body);
    c.header('Cache-Control', 'no-cache');
    c.header('ETag', etag);
    if (c.req.header('if-none-match') === etag) return c.body(null, 304);
    return c.body(body, 200, { 'content-type': type });
  };
  const html = (c: AppContext, body: string) => {
    for (const [name, value] of Object.entries(PAGE_HEADERS)) c.header(name, value);
    return cached(c, body, 'text/html; charset=utf-8');
  };

  api.get('/openapi.json', (c) => cached(c, document().json, 'application/json; charset=utf-8'));
  api.get('/docs', (c) => html(c, document().docs));
  api.get('/', (c) => {
    c.header('Vary', 'Accept');
    if (prefersHtml(c.req.header('accept'))) return html(c, landing);
    return c.json(info);
  });
  return api;
}
