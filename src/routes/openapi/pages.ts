import { createHash } from 'node:crypto';

/**
 * The API reference page (/docs) and the landing page (/), rendered on the server from the OpenAPI
 * document: no scripts, no outside assets, one inline style allowed by its hash.
 */

type Json = Record<string, any>;

const STYLE = `
:root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6475;--bg:#fff;--panel:#f5f7fa;--line:#dde2ea;--link:#1f5fbf}
@media (prefers-color-scheme:dark){:root{--fg:#e4e8ef;--muted:#9aa3b2;--bg:#14171c;--panel:#1c2027;--line:#2c323c;--link:#7fb0ff}}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:980px;margin:0 auto;padding:24px 20px 64px}a{color:var(--link)}h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:40px 0 8px;padding-top:8px;border-top:1px solid var(--line)}h3{font-size:16px;margin:0}
.muted{color:var(--muted)}nav a{margin-right:16px}code,.path{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
.op{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:12px 0}
.m{display:inline-block;min-width:60px;font:600 12px ui-monospace,monospace;text-transform:uppercase}
.get{color:#1a7f37}.post{color:#1f5fbf}.patch{color:#9a6700}.delete{color:#cf222e}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:14px}th,td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid var(--line)}
th{font-weight:600;color:var(--muted)}ul.toc{columns:2;padding-left:18px}ul.toc li{break-inside:avoid}
`;
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

/** Headers for both pages: nothing but this inline style may load or run. */
export const PAGE_HEADERS = {
  'Content-Security-Policy': `default-src 'none'; style-src ${STYLE_HASH}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

export const escapeHtml = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

/** `code` spans for backticked words, everything else escaped. */
const prose = (s: unknown) => escapeHtml(s ?? '').replace(/`([^`]+)`/g, '<code>$1</code>');

/** A description, and the default when the schema has one. */
const described = (schema: Json | undefined, description: unknown) =>
  `${prose(description)}${schema?.default !== undefined ? `${description ? ' ' : ''}<span class="muted">Default <code>${escapeHtml(JSON.stringify(schema.default))}</code>.</span>` : ''}`;

const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;

/** A one-line type of a JSON Schema: `string`, `integer 1–100`, `array of string`, `"a" | "b"`. */
export function typeOf(schema: Json | undefined): string {
  if (!schema || typeof schema !== 'object') return 'any';
  if (schema.$ref) return String(schema.$ref).split('/').pop()!;
  if (schema.enum) return schema.enum.map((v: unknown) => JSON.stringify(v)).join(' | ');
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(' | ');
  const types: string[] = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (types.length === 0) return schema.not?.type === 'null' ? 'any but null' : 'any';
  return types
    .map((t) => {
      if (t === 'array') return `array${schema.items && Object.keys(schema.items).length ? ` of ${typeOf(schema.items)}` : ''}`;
      if ((t === 'integer' || t === 'number') && (schema.minimum !== undefined || schema.maximum !== undefined))
        return `${t} ${schema.minimum ?? ''}–${schema.maximum ?? ''}`;
      return t;
    })
    .join(' | ');
}

export const anchorOf = (method: string, path: string) =>
  `${method}-${path.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'root'}`;

function fieldsTable(schema: Json): string {
  const props: [string, Json][] = Object.entries(schema.properties ?? {});
  if (props.length === 0) return '';
  const required = new Set<string>(schema.required ?? []);
  const rows = props.map(
    ([name, p]) =>
      `<tr><td><code>${escapeHtml(name)}</code>${required.has(name) ? ' <span class="muted">required</span>' : ''}</td><td><code>${escapeHtml(typeOf(p))}</code></td><td>${described(p, p.description)}</td></tr>`,
  );
  const rest = schema.additionalProperties === false ? 'No other fields.' : 'Other fields pass through untouched.';
  return `<table><tr><th>Body field</th><th>Type</th><th></th></tr>${rows.join('')}</table><p class="muted">${rest}</p>`;
}

function operationHtml(doc: Json, path: string, method: string, op: Json): string {
  const resolve = (p: Json) => (p.$ref ? doc.components.parameters[String(p.$ref).split('/').pop()!] : p);
  const params = (op.parameters ?? []).map(resolve);
  const paramRows = params.map(
    (p: Json) =>
      `<tr><td><code>${escapeHtml(p.name)}</code> <span class="muted">${escapeHtml(p.in)}</span></td><td><code>${escapeHtml(typeOf(p.schema))}</code></td><td>${described(p.schema, p.description)}</td></tr>`,
  );
  const auth = (op.security ?? []).map((s: Json) =>
    Object.entries(s)
      .map(([name, scopes]) => `${name}${(scopes as string[]).length ? ` (${(scopes as string[]).join(', ')})` : ''}`)
      .join(' + '),
  );
  const bodyRef = op.requestBody?.content?.['application/json']?.schema?.$ref as string | undefined;
  const bodyName = bodyRef?.split('/').pop();
  const statuses = Object.keys(op.responses ?? {}).join(', ');
  return `<section class="op" id="${anchorOf(method, path)}"><h3><span class="m ${method}">${method}</span> <span class="path">${escapeHtml(path)}</span></h3>
<p>${prose(op.summary)}${op.description ? `<br><span class="muted">${prose(op.description)}</span>` : ''}</p>
<p class="muted">Auth: ${auth.length ? escapeHtml(auth.join(' or ')) : 'none'} · Answers: ${escapeHtml(statuses)}${bodyName ? ` · Body: <code>${escapeHtml(bodyName)}</code>` : ''}</p>
${paramRows.length ? `<table><tr><th>Parameter</th><th>Type</th><th></th></tr>${paramRows.join('')}</table>` : ''}
${bodyName ? fieldsTable(doc.components.schemas[bodyName]) : ''}</section>`;
}

/** `GET /docs`: every route of the document, grouped by tag, with its parameters and body fields. */
export function docsPage(doc: Json): string {
  const byTag = new Map<string, string[]>();
  const toc = new Map<string, string[]>();
  for (const [path, methods] of Object.entries<Json>(doc.paths)) {
    for (const [method, op] of Object.entries<Json>(methods)) {
      const tag = op.tags?.[0] ?? 'Other';
      (byTag.get(tag) ?? byTag.set(tag, []).get(tag)!).push(operationHtml(doc, path, method, op));
      (toc.get(tag) ?? toc.set(tag, []).get(tag)!).push(
        `<li><a href="#${anchorOf(method, path)}"><span class="m ${method}">${method}</span> <span class="path">${escapeHtml(path)}</span></a></li>`,
      );
    }
  }
  const tagId = (name: string) => `tag-${name.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()}`;
  const tags: Json[] = doc.tags ?? [];
  const headerRows = [
    ...Object.values<Json>(doc.components.parameters).map(
      (p) => `<tr><td><code>${escapeHtml(p.name)}</code></td><td>request</td><td>${prose(p.description)}</td></tr>`,
    ),
    ...Object.entries<Json>(doc.components.headers).map(
      ([name, h]) => `<tr><td><code>${escapeHtml(name)}</code></td><td>response</td><td>${prose(h.description)}</td></tr>`,
    ),
  ];
  const schemes = Object.entries<Json>(doc.components.securitySchemes).map(
    ([name, s]) => `<li><code>${escapeHtml(name)}</code>: ${prose(s.description)}</li>`,
  );
  const body = `<h1>${escapeHtml(doc.info.title)} API</h1>
<p class="muted">Version ${escapeHtml(doc.info.version)} · OpenAPI ${escapeHtml(doc.openapi)}</p>
<nav><a href="/openapi.json">OpenAPI document (JSON)</a><a href="/dashboard">Console</a><a href="/health">Health</a><a href="/">Home</a></nav>
<p>${prose(doc.info.description)}</p>
<h2 id="auth">Authentication</h2><ul>${schemes.join('')}</ul>
<h2 id="errors">Errors</h2><p>Every error, the gateway's or the upstream's, is OpenAI-shaped: <code>{"error":{"message","type","param","code"}}</code>, with <code>param</code> naming the field, query parameter or header at fault and <code>code</code> one of a closed list of strings.</p>
<h2 id="headers">Headers</h2><table><tr><th>Header</th><th></th><th></th></tr>${headerRows.join('')}</table>
<h2 id="routes">Routes</h2>${tags.map((t) => `<h3><a href="#${tagId(t.name)}">${escapeHtml(t.name)}</a></h3><ul class="toc">${(toc.get(t.name) ?? []).join('')}</ul>`).join('')}
${tags.map((t) => `<h2 id="${tagId(t.name)}">${escapeHtml(t.name)}</h2><p class="muted">${prose(t.description)}</p>${(byTag.get(t.name) ?? []).join('')}`).join('')}`;
  return page(`${doc.info.title} API reference`, body);
}

/** What `GET /` tells an API client, and the links the page shows. */
export function landingInfo(version: string) {
  return {
    name: 'Context Memory Gateway',
    object: 'gateway',
    version,
    description: 'An OpenAI-compatible gateway in front of OpenRouter, with thread memory and a usage ledger.',
    links: { api: '/v1', docs: '/docs', openapi: '/openapi.json', dashboard: '/dashboard', health: '/health' },
  };
}

/** `GET /` for a browser. */
export function landingPage(version: string): string {
  const info = landingInfo(version);
  return page(
    info.name,
    `<h1>${escapeHtml(info.name)}</h1><p class="muted">Version ${escapeHtml(version)}</p><p>${escapeHtml(info.description)}</p>
<p>Point an OpenAI SDK at this gateway's <code>/v1</code> as its base URL, with a gateway key (<code>cmg_…</code>) as its API key.</p>
<ul><li><a href="/dashboard">Console</a>: usage and cost for finance; keys, budgets, workspaces, threads and requests for operators.</li>
<li><a href="/docs">API reference</a>: every route, its parameters and body fields.</li>
<li><a href="/openapi.json">OpenAPI document</a> (JSON), for clients and tools.</li>
<li><a href="/health">Health</a></li></ul>`,
  );
}
