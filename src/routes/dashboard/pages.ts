import { html } from 'hono/html';

// Pages are rendered with hono/html, which escapes every interpolated value. No inline scripts or
// styles anywhere: the CSP allows only 'self', so the client code lives in app.js / app.css.

export interface Assets {
  /** Content hashes, appended to the asset URLs so a new build is never served from a stale cache. */
  jsVersion: string;
  cssVersion: string;
}

/** A report table that app.js fills: the grouping columns, then the same figures for every report. */
function reportTable(name: string, title: string, groupColumns: string[]) {
  const figures = ['Requests', 'Errors', 'Prompt tokens', 'Completion tokens', 'Cost (USD)', 'Unpriced requests'];
  return html`<section aria-labelledby="${name}-title">
    <h2 id="${name}-title">${title}</h2>
    <table id="table-${name}" data-testid="table-${name}">
      <thead>
        <tr>
          ${groupColumns.map((c) => html`<th>${c}</th>`)} ${figures.map((c) => html`<th class="num">${c}</th>`)}
        </tr>
      </thead>
      <tbody></tbody>
    </table>
  </section>`;
}

function layout(title: string, assets: Assets, body: unknown, script = false) {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex" />
        <title>${title}</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/dashboard/app.css?v=${assets.cssVersion}" />
        ${script ? html`<script type="module" src="/dashboard/app.js?v=${assets.jsVersion}"></script>` : ''}
      </head>
      <body>
        ${body}
      </body>
    </html>`;
}

/** The sign-in form. `error` is a fixed, generic message (never which check failed). */
export function signInPage(assets: Assets, error?: string) {
  return layout(
    'Sign in · Usage dashboard',
    assets,
    html`<main class="signin">
      <h1>Usage dashboard</h1>
      <p class="muted">Sign in with the admin token or a gateway key that has the <code>reports</code> scope.</p>
      ${error ? html`<p class="error" role="alert" data-testid="login-error">${error}</p>` : ''}
      <form method="post" action="/dashboard/login" data-testid="login-form">
        <label for="token">Token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required data-testid="token" />
        <button type="submit" data-testid="sign-in">Sign in</button>
      </form>
    </main>`,
  );
}

export interface DashboardView {
  /** Who is signed in, for the header, e.g. "admin" or "key ops (workspace acme)". */
  who: string;
  /** Default range, inclusive UTC days (YYYY-MM-DD). */
  from: string;
  to: string;
  usageEnabled: boolean;
}

/** The dashboard shell; app.js fills the totals, the chart and the tables from /admin/usage. */
export function dashboardPage(assets: Assets, view: DashboardView) {
  return layout(
    'Usage dashboard',
    assets,
    html`<header class="bar">
        <h1>Usage dashboard</h1>
        <span class="muted" data-testid="who">Signed in as ${view.who}</span>
        <form method="post" action="/dashboard/logout">
          <button type="submit" class="secondary" data-testid="sign-out">Sign out</button>
        </form>
      </header>
      <main id="dashboard">
        ${
          view.usageEnabled
            ? ''
            : html`<p class="notice warn" data-testid="usage-off">
                Usage recording is off on this gateway (USAGE_ENABLED=false): new requests are not being recorded. Earlier records are still
                shown.
              </p>`
        }
        <form id="range" class="range" data-testid="range-form">
          <label>From <input type="date" id="from" name="from" value="${view.from}" required data-testid="from" /></label>
          <label>To <input type="date" id="to" name="to" value="${view.to}" required data-testid="to" /></label>
          <span class="muted">UTC days, both included</span>
          <button type="submit" data-testid="apply">Apply</button>
          <a id="download" class="button secondary" href="#" download data-testid="download-csv">Download CSV</a>
        </form>
        <p id="notice" class="notice" role="status" data-testid="notice" hidden></p>
        <section class="totals" aria-label="Totals" data-testid="totals">
          <div><span class="label">Cost (USD)</span><span class="value" id="totals-cost" data-testid="totals-cost">–</span></div>
          <div><span class="label">Requests</span><span class="value" id="totals-requests" data-testid="totals-requests">–</span></div>
          <div><span class="label">Errors</span><span class="value" id="totals-errors" data-testid="totals-errors">–</span></div>
          <div>
            <span class="label">Prompt tokens</span><span class="value" id="totals-prompt" data-testid="totals-prompt-tokens">–</span>
          </div>
          <div>
            <span class="label">Completion tokens</span
            ><span class="value" id="totals-completion" data-testid="totals-completion-tokens">–</span>
          </div>
          <div title="Requests with tokens but no price (no upstream cost, no catalog price): recorded at $0">
            <span class="label">Unpriced requests</span
            ><span class="value" id="totals-unpriced" data-testid="totals-unpriced-requests">–</span>
          </div>
        </section>
        <section aria-labelledby="chart-title">
          <h2 id="chart-title">Cost per day by model</h2>
          <div id="chart-box" class="chart-box">
            <svg id="chart" data-testid="chart" role="img" aria-label="Cost per day by model" viewBox="0 0 960 320"></svg>
          </div>
          <ul id="legend" class="legend" data-testid="legend"></ul>
        </section>
        ${reportTable('by-model', 'By model', ['Model'])} ${reportTable('by-key', 'By key', ['Workspace', 'Key'])}
      </main>`,
    true,
  );
}
