import { html } from 'hono/html';

// The console's views, server-rendered as empty skeletons (forms, table heads); the client modules
// (usage.js, requests.js, keys.js, workspaces.js, threads.js) fill them. One view shows at a time.

/**
 * A table in a box that scrolls sideways on a narrow screen, so the page itself never does; a
 * `reflow` table turns into one card per row there instead (lists read better that way than
 * figures, which compare best in columns).
 */
function table(id: string, columns: (string | { label: string; num?: boolean })[], opts: { reflow?: boolean } = {}) {
  return html`<div class="table-wrap">
    <table id="table-${id}" data-testid="table-${id}" class="${opts.reflow ? 'reflow' : ''}">
      <thead>
        <tr>
          ${columns.map((c) => (typeof c === 'string' ? html`<th>${c}</th>` : html`<th class="${c.num ? 'num' : ''}">${c.label}</th>`))}
        </tr>
      </thead>
      <tbody></tbody>
    </table>
  </div>`;
}

const num = (label: string) => ({ label, num: true });
const FIGURES = ['Requests', 'Errors', 'Prompt tokens', 'Completion tokens', 'Cost (USD)', 'Unpriced requests'].map(num);

function section(id: string, title: string, body: unknown) {
  return html`<section id="view-${id}" class="view" data-view="${id}" data-testid="view-${id}" aria-labelledby="view-${id}-title" hidden>
    <h2 id="view-${id}-title" class="view-title">${title}</h2>
    ${body}
  </section>`;
}

function rangeInputs(prefix: string, from: string, to: string) {
  const id = (name: string) => (prefix ? `${prefix}-${name}` : name);
  return html`<label>From <input type="date" id="${id('from')}" name="from" value="${from}" required data-testid="${id('from')}" /></label>
    <label>To <input type="date" id="${id('to')}" name="to" value="${to}" required data-testid="${id('to')}" /></label>`;
}

export function usageView(from: string, to: string) {
  return section(
    'usage',
    'Usage',
    html`<form id="range" class="range" data-testid="range-form">
        ${rangeInputs('', from, to)}
        <span class="muted">UTC days, both included</span>
        <button type="submit" data-testid="apply">Apply</button>
        <a id="download" class="button secondary" href="#" download data-testid="download-csv">Download CSV</a>
      </form>
      <p id="notice" class="notice" role="status" data-testid="notice" hidden></p>
      <div class="totals" aria-label="Totals" data-testid="totals">
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
      </div>
      <h3 id="chart-title">Cost per day by model</h3>
      <div id="chart-box" class="chart-box">
        <svg id="chart" data-testid="chart" role="img" aria-labelledby="chart-title" viewBox="0 0 960 320"></svg>
      </div>
      <ul id="legend" class="legend" data-testid="legend"></ul>
      <h3>By model</h3>
      ${table('by-model', ['Model', ...FIGURES])}
      <h3>By key</h3>
      ${table('by-key', ['Workspace', 'Key', ...FIGURES])}
      <h3>Latency by model</h3>
      <p class="muted">Percentiles over the requests answered <code>ok</code>; time to first byte as the client saw it.</p>
      ${table('latency', ['Model', num('Requests'), num('OK'), num('p50'), num('p95'), num('TTFB p50'), num('TTFB p95')])}
      <h3>Errors by status and code</h3>
      ${table('errors', ['Status', num('HTTP'), 'Code', num('Requests'), num('Models'), 'Last seen (UTC)'], { reflow: true })}
      <h3>Unpriced usage</h3>
      <p class="muted">Requests with tokens but no price (no upstream cost and no catalog price) are recorded at $0.</p>
      ${table('unpriced', ['Model', num('Unpriced requests'), num('Unpriced tokens'), num('All requests')])}`,
  );
}

export function requestsView(from: string, to: string, admin: boolean) {
  return section(
    'requests',
    'Request log',
    html`<form id="requests-filter" class="range" data-testid="requests-filter">
        ${rangeInputs('requests', from, to)}
        <label>Key <input id="requests-key" name="key" list="requests-keys" placeholder="name or id" data-testid="requests-key" /></label>
        <datalist id="requests-keys"></datalist>
        <label>Model <input id="requests-model" name="model" list="requests-models" data-testid="requests-model" /></label>
        <datalist id="requests-models"></datalist>
        <label
          >Status
          <select id="requests-status" name="status" data-testid="requests-status">
            <option value="">any</option>
            ${['ok', 'upstream_error', 'rejected', 'client_aborted', 'timeout', 'aborted'].map((s) => html`<option>${s}</option>`)}
          </select>
        </label>
        <button type="submit" data-testid="requests-apply">Apply</button>
      </form>
      <p id="requests-notice" class="notice" role="status" data-testid="requests-notice" hidden></p>
      ${table(
        'requests',
        [
          'Time (UTC)',
          'Status',
          'Model',
          'Key',
          num('Prompt'),
          num('Completion'),
          num('Cost'),
          num('Latency'),
          admin ? 'Thread' : 'Thread id',
        ],
        { reflow: true },
      )}
      <button id="requests-more" class="secondary" data-testid="requests-more" hidden>Load more</button>`,
  );
}

function limitFields(prefix: string, defaults: { proxy?: boolean } = {}) {
  const id = (name: string) => `${prefix}-${name}`;
  return html`<fieldset class="scopes">
      <legend>Scopes</legend>
      <label
        ><input type="checkbox" name="scopes" value="proxy" ${defaults.proxy ? html`checked` : ''} data-testid="${id('scope-proxy')}" />
        proxy</label
      >
      <label><input type="checkbox" name="scopes" value="reports" data-testid="${id('scope-reports')}" /> reports</label>
    </fieldset>
    <label>RPM <input name="rpm" type="number" min="1" step="1" inputmode="numeric" placeholder="none" data-testid="${id('rpm')}" /></label>
    <label>TPM <input name="tpm" type="number" min="1" step="1" inputmode="numeric" placeholder="none" data-testid="${id('tpm')}" /></label>
    <label
      >Budget (USD)
      <input name="budget_usd" inputmode="decimal" pattern="\\d{1,10}(\\.\\d{1,10})?" placeholder="none" data-testid="${id('budget')}"
    /></label>
    <label
      >Per
      <select name="budget_period" data-testid="${id('period')}">
        <option value="month">month</option>
        <option value="day">day</option>
      </select>
    </label>
    <label>Expires (UTC) <input name="expires_at" type="datetime-local" data-testid="${id('expires')}" /></label>`;
}

export function keysView() {
  return section(
    'keys',
    'Keys',
    html`<details class="panel" id="key-create-panel" open>
        <summary>Create a key</summary>
        <form id="key-create" class="grid-form" data-testid="key-create">
          <label
            >Workspace
            <select name="workspace" required data-testid="key-workspace"></select
          ></label>
          <label>Name <input name="name" required maxlength="200" data-testid="key-name" /></label>
          ${limitFields('key', { proxy: true })}
          <button type="submit" data-testid="key-submit">Create key</button>
        </form>
      </details>
      <div id="key-reveal" class="reveal" data-testid="key-reveal" hidden>
        <p><strong>Copy the new key now: it is shown this once.</strong> Only its hash is stored.</p>
        <code id="key-reveal-value" data-testid="new-key"></code>
        <div class="actions">
          <button type="button" id="key-reveal-copy" class="secondary" data-testid="key-copy">Copy</button>
          <button type="button" id="key-reveal-done" data-testid="key-reveal-done">Done</button>
        </div>
      </div>
      <p id="keys-notice" class="notice" role="status" data-testid="keys-notice" hidden></p>
      <form id="keys-filter" class="range">
        <label
          >Workspace
          <select id="keys-workspace" data-testid="keys-workspace">
            <option value="">all</option>
          </select></label
        >
        <label><input type="checkbox" id="keys-show-revoked" data-testid="keys-show-revoked" /> show revoked</label>
      </form>
      ${table('keys', ['Name', 'Workspace', 'Prefix', 'Scopes', num('RPM'), num('TPM'), 'Spend / budget', 'Expires (UTC)', 'State', ''], { reflow: true })}
      <dialog id="key-edit" data-testid="key-edit">
        <form id="key-edit-form" method="dialog" class="grid-form">
          <h3>Edit key <span id="key-edit-name"></span></h3>
          <p class="muted">Empty fields mean no limit (no budget, never expires).</p>
          ${limitFields('edit')}
          <p id="key-edit-error" class="error" role="alert" hidden></p>
          <div class="actions">
            <button type="button" class="secondary" id="key-edit-cancel" data-testid="edit-cancel">Cancel</button>
            <button type="submit" value="save" data-testid="edit-save">Save</button>
          </div>
        </form>
      </dialog>`,
  );
}

export function workspacesView() {
  return section(
    'workspaces',
    'Workspaces',
    html`<form id="workspace-create" class="range" data-testid="workspace-create">
        <label
          >Name <input name="name" required pattern="[A-Za-z0-9._\\-]{1,64}" title="1–64 of A–Z a–z 0–9 . _ -" data-testid="workspace-name"
        /></label>
        <button type="submit" data-testid="workspace-submit">Create workspace</button>
      </form>
      <p id="workspaces-notice" class="notice" role="status" data-testid="workspaces-notice" hidden></p>
      ${table('workspaces', ['Name', 'Id', 'Created (UTC)', num('Active keys'), ''], { reflow: true })}`,
  );
}

export function threadsView() {
  return section(
    'threads',
    'Threads',
    html`<form id="threads-filter" class="range">
        <label
          >Workspace
          <select id="threads-workspace" data-testid="threads-workspace"></select
        ></label>
      </form>
      <p id="threads-notice" class="notice" role="status" data-testid="threads-notice" hidden></p>
      <div id="threads-list">
        ${table('threads', ['Thread', 'Title', 'Updated (UTC)', 'Created (UTC)'], { reflow: true })}
        <button id="threads-more" class="secondary" data-testid="threads-more" hidden>Load more</button>
      </div>
      <article id="thread-detail" class="panel" data-testid="thread-detail" hidden>
        <p><a id="thread-back" href="#threads">← All threads</a></p>
        <h3>Thread <code id="thread-id" data-testid="thread-id"></code></h3>
        <dl class="facts">
          <dt>Title</dt>
          <dd id="thread-title"></dd>
          <dt>Updated</dt>
          <dd id="thread-updated"></dd>
          <dt>Summary</dt>
          <dd id="thread-summary" class="pre"></dd>
        </dl>
        <div class="actions">
          <button type="button" id="thread-delete" class="danger" data-testid="thread-delete">Delete thread</button>
          <button type="button" id="thread-delete-confirm" class="danger" data-testid="thread-delete-confirm" hidden>
            Delete it and all its items
          </button>
          <button type="button" id="thread-delete-cancel" class="secondary" hidden>Keep it</button>
        </div>
        <h3>Items</h3>
        ${table('items', [num('#'), 'Kind', 'Role', 'State', num('Tokens'), 'Content'], { reflow: true })}
        <button id="items-more" class="secondary" data-testid="items-more" hidden>Load more</button>
        <h3>What the next request would get</h3>
        <p class="muted">A dry run: the messages a request on this thread would be forwarded with. Nothing is sent or stored.</p>
        <form id="dryrun" class="grid-form" data-testid="dryrun">
          <label>Model <input name="model" required list="requests-models" data-testid="dryrun-model" /></label>
          <label class="wide">Message <textarea name="message" rows="3" required data-testid="dryrun-message"></textarea></label>
          <label>Memory cap (tokens) <input name="max_tokens" type="number" min="0" placeholder="default" /></label>
          <button type="submit" data-testid="dryrun-submit">Show the context</button>
        </form>
        <div id="dryrun-result" data-testid="dryrun-result" hidden>
          <p id="dryrun-summary" data-testid="dryrun-summary"></p>
          <ol id="dryrun-messages" class="messages" data-testid="dryrun-messages"></ol>
        </div>
      </article>`,
  );
}
