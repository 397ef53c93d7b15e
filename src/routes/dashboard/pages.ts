import { html } from 'hono/html';
import { keysView, requestsView, threadsView, usageView, workspacesView } from './views.js';

// Pages are rendered with hono/html, which escapes every interpolated value. No inline scripts or
// styles anywhere: the CSP allows only 'self', so the client code lives in the .js / .css assets.

export interface Assets {
  /** Content hashes, appended to the asset URLs so a new build is never served from a stale cache. */
  jsVersion: string;
  cssVersion: string;
}

function layout(title: string, assets: Assets, body: unknown, head: unknown = '') {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex" />
        <title>${title}</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/dashboard/app.css?v=${assets.cssVersion}" />
        ${head}
      </head>
      <body>
        ${body}
      </body>
    </html>`;
}

/** The sign-in form. `error` is a fixed, generic message (never which check failed). */
export function signInPage(assets: Assets, error?: string) {
  return layout(
    'Sign in · Gateway console',
    assets,
    html`<main class="signin">
      <h1>Gateway console</h1>
      <p class="muted">
        Sign in with the admin token (everything: keys, workspaces, threads, requests, usage) or a gateway key that has the
        <code>reports</code> scope (its workspace's usage and requests).
      </p>
      ${error ? html`<p class="error" role="alert" data-testid="login-error">${error}</p>` : ''}
      <form method="post" action="/dashboard/login" data-testid="login-form">
        <label for="token">Token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required data-testid="token" />
        <button type="submit" data-testid="sign-in">Sign in</button>
      </form>
      <p class="muted">The token is exchanged for a session cookie (12 hours); it is never kept in the browser.</p>
    </main>`,
  );
}

export interface ConsoleView {
  /** Who is signed in, for the header, e.g. "admin" or "key ops (workspace acme)". */
  who: string;
  /** `admin` sees every view; `key` (a reports key) its workspace's usage and requests. */
  role: 'admin' | 'key';
  /** The session's CSRF token, sent back by app.js on every change (empty without a cookie session). */
  csrf: string;
  /** Default range, inclusive UTC days (YYYY-MM-DD). */
  from: string;
  to: string;
  usageEnabled: boolean;
}

const NAV: { id: string; label: string; admin: boolean }[] = [
  { id: 'usage', label: 'Usage', admin: false },
  { id: 'requests', label: 'Requests', admin: false },
  { id: 'keys', label: 'Keys', admin: true },
  { id: 'workspaces', label: 'Workspaces', admin: true },
  { id: 'threads', label: 'Threads', admin: true },
];

/** The console shell: header, navigation and every view's skeleton; app.js fills them from the JSON APIs. */
export function consolePage(assets: Assets, view: ConsoleView) {
  const admin = view.role === 'admin';
  const nav = NAV.filter((n) => admin || !n.admin);
  return layout(
    'Gateway console',
    assets,
    html`<header class="topbar">
        <h1>Gateway console</h1>
        <nav aria-label="Console" data-testid="nav">
          ${nav.map((n) => html`<a href="#${n.id}" data-view="${n.id}" data-testid="nav-${n.id}">${n.label}</a>`)}
        </nav>
        <span class="muted who" data-testid="who">Signed in as ${view.who}</span>
        <form method="post" action="/dashboard/logout">
          <button type="submit" class="secondary" data-testid="sign-out">Sign out</button>
        </form>
      </header>
      <main id="dashboard" data-role="${view.role}">
        ${
          view.usageEnabled
            ? ''
            : html`<p class="notice warn" data-testid="usage-off">
                Usage recording is off on this gateway (USAGE_ENABLED=false): new requests are not being recorded. Earlier records are still
                shown.
              </p>`
        }
        <p id="flash" class="notice" role="status" data-testid="flash" hidden></p>
        ${usageView(view.from, view.to)} ${requestsView(view.from, view.to, admin)}
        ${admin ? html`${keysView()} ${workspacesView()} ${threadsView()}` : ''}
      </main>`,
    html`<meta name="csrf-token" content="${view.csrf}" />
      <script type="module" src="/dashboard/app.js?v=${assets.jsVersion}"></script>`,
  );
}
