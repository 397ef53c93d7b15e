import { renameSync, writeFileSync, appendFileSync, rmSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { describeTarget, openAdminClient, type AdminClient, type KeyCreateInput } from './admin/admin-client.js';
import { otherDatabaseWarning } from './admin/gateway-probe.js';
import { loadConfigFromProcess, type Config } from './config.js';
import { SCOPES, type Scope } from './keys/key-store.js';
import { toCsv } from './usage/csv.js';
import { normalizeDecimal } from './usage/decimal.js';
import { RECORD_COLUMNS } from './usage/reports.js';

const USAGE = `Usage: npm run cli -- <command>

  keys create --workspace <name> --name <name> [--scopes proxy,reports] [--rpm N] [--tpm N]
              [--budget USD] [--budget-period day|month] [--expires-at ISO-8601] [--json]
  keys list [--workspace <name>] [--json]
  keys revoke <key-id | key-name> [--workspace <name>]
  workspaces create <name>
  workspaces list [--json]
  usage [PERIOD] [--group-by | --by day,week,month,workspace,key,model]
        [--workspace <name>] [--key <id|name>] [--model <id>] [--csv [FILE]] [--json]
  usage requests [PERIOD] [--workspace ..] [--key ..] [--model ..] [--status ok,upstream_error,..]
        [--route chat.completions,..] [--limit N] [--csv [FILE]] [--json]

  PERIOD: --month (this month), --last-month, --period today|yesterday|this_week|last_week|
          this_month|last_month|YYYY-MM, or --from YYYY-MM-DD --to YYYY-MM-DD (to exclusive);
          default: this month so far.
  --csv FILE writes the CSV to FILE instead of stdout. "usage requests" lists every record of the
  range as CSV, the newest 50 otherwise (--limit N for more).

The workspace named by "keys create" is created when it does not exist yet. Write commands say
which database they write; every command warns when the gateway at PORT uses another database.`;

class UsageError extends Error {}
/** A refusal that is the caller's to fix (ambiguous name, nothing found): its message, exit code 2. */
class CliError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

function parse<O extends Options>(args: string[], options: O, positionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals: positionals });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function int(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) <= 0) throw new UsageError(`${flag} must be a positive whole number`);
  return Number(value);
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(columns), ...cells.map(line)].join('\n');
}

/** Says on stderr (stdout stays the command's output) which database a write goes to. */
function announceWrite(config: Config, client: AdminClient) {
  console.error(`database: ${describeTarget(config, client)}`);
}

async function keysCreate(config: Config, client: AdminClient, args: string[]) {
  const { values } = parse(args, {
    workspace: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'string' },
    rpm: { type: 'string' },
    tpm: { type: 'string' },
    budget: { type: 'string' },
    'budget-period': { type: 'string' },
    'expires-at': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (!values.workspace || !values.name) throw new UsageError('keys create needs --workspace and --name');
  const scopes = values.scopes?.split(',').map((s) => s.trim()) as Scope[] | undefined;
  if (scopes?.some((s) => !SCOPES.includes(s))) throw new UsageError(`--scopes takes ${SCOPES.join(', ')}`);
  const input: KeyCreateInput = {
    workspace: values.workspace,
    name: values.name,
    scopes,
    rpm: int(values.rpm, '--rpm'),
    tpm: int(values.tpm, '--tpm'),
    budget_usd: values.budget,
    budget_period: values['budget-period'] as 'day' | 'month' | undefined,
    expires_at: values['expires-at'],
  };
  announceWrite(config, client);
  const workspaces = await client.listWorkspaces();
  if (!workspaces.some((w) => w.name === input.workspace || w.id === input.workspace)) {
    await client.createWorkspace(input.workspace);
    if (!values.json) console.error(`created workspace ${input.workspace}`);
  }
  const key = await client.createKey(input);
  if (values.json) return console.log(JSON.stringify(key, null, 2));
  console.log(`key id:    ${key.id}\nworkspace: ${key.workspace}\nscopes:    ${key.scopes.join(',')}\n\n${key.key}\n`);
  console.error('This key is shown once; only its SHA-256 hash is stored. Keep it somewhere safe.');
}

function keyStatus(k: Record<string, any>, now: number): string {
  if (k.revoked_at) return 'revoked';
  if (k.expires_at && Date.parse(k.expires_at) <= now) return 'expired';
  return 'active';
}

async function keysList(client: AdminClient, args: string[]) {
  const { values } = parse(args, { workspace: { type: 'string' }, json: { type: 'boolean' } });
  const keys = await client.listKeys(values.workspace);
  if (values.json) return console.log(JSON.stringify(keys, null, 2));
  if (keys.length === 0) return console.log(values.workspace ? `no keys in workspace ${values.workspace}` : 'no keys');
  const now = Date.now();
  const rows = keys.map((k) => ({
    ...k,
    scopes: k.scopes.join(','),
    rpm: k.rpm ?? '-',
    budget: k.budget_usd ? `${normalizeDecimal(k.budget_usd)}/${k.budget_period ?? 'month'}` : '-',
    spent: k.spend_usd === undefined ? '' : (k.spend_usd ?? 'unavailable'),
    since: k.spend_period_start ?? '',
    left: k.budget_usd ? (k.budget_remaining_usd ?? '?') : '-',
    expires: k.expires_at ? k.expires_at.replace(/\.000Z$/, 'Z') : 'never',
    status: keyStatus(k, now),
    created: String(k.created_at).slice(0, 10),
  }));
  console.log(
    table(rows, ['id', 'workspace', 'name', 'prefix', 'scopes', 'rpm', 'budget', 'spent', 'since', 'left', 'expires', 'status', 'created']),
  );
}

const describeKey = (k: Record<string, any>) => `${k.id} ("${k.name}" in workspace ${k.workspace})`;

/** `keys revoke <id|name>`: an id, or a name (one active key of that name; --workspace narrows). */
async function keysRevoke(config: Config, client: AdminClient, args: string[]) {
  const { values, positionals } = parse(args, { workspace: { type: 'string' } }, true);
  if (positionals.length !== 1) throw new UsageError('keys revoke needs one key id or key name');
  const ref = positionals[0];
  const keys = await client.listKeys(values.workspace);
  const byId = keys.filter((k) => k.id === ref);
  const matches = byId.length ? byId : keys.filter((k) => k.name === ref);
  const where = values.workspace ? ` in workspace ${values.workspace}` : '';
  if (matches.length === 0) throw new CliError(`no key with the id or name "${ref}"${where} ("keys list" shows the keys)`);
  const active = matches.filter((k) => !k.revoked_at);
  if (active.length === 0) {
    return console.log(matches.map((k) => `${describeKey(k)} was already revoked at ${k.revoked_at}`).join('\n'));
  }
  if (active.length > 1) {
    const spaces = new Set(active.map((k) => k.workspace));
    const ask = spaces.size > 1 && !values.workspace ? 'pass --workspace <name> or the key id' : 'pass the key id';
    throw new CliError(
      `"${ref}" names ${active.length} active keys${where}; ${ask}:\n${active.map((k) => `  ${describeKey(k)}, created ${k.created_at}`).join('\n')}`,
    );
  }
  announceWrite(config, client);
  const key = await client.revokeKey(active[0].id);
  console.log(`revoked ${describeKey({ ...active[0], ...key, workspace: active[0].workspace })} at ${key.revoked_at}`);
}

/** `--csv FILE` and `--csv=FILE` become `--csv-file FILE` (parseArgs has no optional values). */
function csvFileArgs(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('--csv=')) out.push('--csv-file', a.slice('--csv='.length));
    else if (a === '--csv' && args[i + 1] !== undefined && !args[i + 1].startsWith('-')) out.push('--csv-file', args[++i]);
    else out.push(a);
  }
  return out;
}

const REPORT_OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  period: { type: 'string' },
  month: { type: 'boolean' },
  'last-month': { type: 'boolean' },
  workspace: { type: 'string' },
  key: { type: 'string' },
  model: { type: 'string' },
  csv: { type: 'boolean' },
  'csv-file': { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies Options;

function periodOf(values: { from?: string; to?: string; period?: string; month?: boolean; 'last-month'?: boolean }) {
  const named = [values.period && `--period ${values.period}`, values.month && '--month', values['last-month'] && '--last-month'].filter(
    Boolean,
  );
  if (named.length > 1) throw new UsageError(`give one period, not ${named.join(' and ')}`);
  if (named.length && (values.from || values.to)) throw new UsageError(`${named[0]} replaces --from/--to: give one or the other`);
  const period = values.period ?? (values.month ? 'this_month' : values['last-month'] ? 'last_month' : undefined);
  return { from: values.from, to: values.to, period };
}

/** Writes a file whole or not at all (a temporary file renamed into place). */
function writeFileWhole(path: string, write: (tmp: string) => Promise<void>) {
  const tmp = `${path}.${process.pid}.tmp`;
  return write(tmp).then(
    () => renameSync(tmp, path),
    (err) => {
      rmSync(tmp, { force: true });
      throw err;
    },
  );
}

async function usage(client: AdminClient, args: string[]) {
  const { values } = parse(csvFileArgs(args), { ...REPORT_OPTIONS, 'group-by': { type: 'string' }, by: { type: 'string' } });
  if (values['group-by'] && values.by) throw new UsageError('--by is --group-by: give one');
  const query = {
    ...periodOf(values),
    groupBy: values['group-by'] ?? values.by,
    workspace: values.workspace,
    key: values.key,
    model: values.model,
  };
  const file = values['csv-file'];
  if (values.csv || file) {
    const csv = (await client.usage({ ...query, csv: true })) as string;
    if (!file) return process.stdout.write(csv);
    await writeFileWhole(file, async (tmp) => writeFileSync(tmp, csv));
    return console.error(`wrote ${csv.trimEnd().split('\r\n').length - 1} rows to ${file}`);
  }
  const report = (await client.usage(query)) as Record<string, any>;
  if (values.json) return console.log(JSON.stringify(report, null, 2));
  console.log(`usage ${report.from} to ${report.to} (exclusive), grouped by ${report.group_by.join(', ') || 'nothing'}\n`);
  if (report.data.length === 0) return console.log('no usage in this range');
  const columns = Object.keys(report.data[0]);
  console.log(table([...report.data, { [columns[0]]: 'TOTAL', ...report.totals }], columns));
}

const RECORD_TABLE = [
  'created_at',
  'workspace_name',
  'key_name',
  'route',
  'model',
  'status',
  'http_status',
  'prompt_tokens',
  'completion_tokens',
  'cost_usd',
  'request_id',
];

/** `usage requests`: per-request records, newest first, page by page (all of the range as CSV). */
async function usageRequests(client: AdminClient, args: string[]) {
  const { values } = parse(csvFileArgs(args), {
    ...REPORT_OPTIONS,
    status: { type: 'string' },
    route: { type: 'string' },
    limit: { type: 'string' },
  });
  const csv = values.csv || values['csv-file'] !== undefined;
  const limit = int(values.limit, '--limit') ?? (csv ? Infinity : 50);
  const query = {
    ...periodOf(values),
    workspace: values.workspace,
    key: values.key,
    model: values.model,
    status: values.status,
    route: values.route,
  };
  async function* pages() {
    let cursor: string | undefined;
    let left = limit;
    while (left > 0) {
      const page = await client.usageRecords({ ...query, limit: Math.min(1000, left), cursor });
      yield page.data as Record<string, unknown>[];
      left -= page.data.length;
      if (!page.next_cursor) return;
      cursor = page.next_cursor;
    }
  }
  if (csv) {
    const header = toCsv([...RECORD_COLUMNS], []);
    const file = values['csv-file'];
    let rows = 0;
    const emit = async (write: (text: string) => void) => {
      write(header);
      for await (const data of pages()) {
        rows += data.length;
        if (data.length) write(toCsv([...RECORD_COLUMNS], data).slice(header.length));
      }
    };
    if (!file) return emit((text) => process.stdout.write(text));
    await writeFileWhole(file, async (tmp) => {
      writeFileSync(tmp, '');
      await emit((text) => appendFileSync(tmp, text));
    });
    return console.error(`wrote ${rows} records to ${file}`);
  }
  const records: Record<string, unknown>[] = [];
  for await (const data of pages()) records.push(...data);
  if (values.json) return console.log(JSON.stringify(records, null, 2));
  if (records.length === 0) return console.log('no requests in this range');
  console.log(table(records, RECORD_TABLE));
}

async function run(argv: string[]) {
  const [group, verb, ...rest] = argv;
  if (!group || group === 'help' || group === '--help') return console.log(USAGE);
  const loaded = loadConfigFromProcess();
  if (!loaded.ok) {
    for (const line of loaded.errors) console.error(`config error: ${line}`);
    process.exitCode = 1;
    return;
  }
  const config = loaded.config;
  // A gateway on another database makes keys made here useless there, and lists and reports look
  // empty: said before the command's own output. Asked before the database opens (opening PGlite
  // keeps the event loop busy, and the answer would miss its short deadline).
  const warning = await otherDatabaseWarning(config);
  if (warning) console.error(warning);
  const client = await openAdminClient(config);
  try {
    if (group === 'keys' && verb === 'create') return await keysCreate(config, client, rest);
    if (group === 'keys' && verb === 'list') return await keysList(client, rest);
    if (group === 'keys' && verb === 'revoke') return await keysRevoke(config, client, rest);
    if (group === 'workspaces' && verb === 'create') {
      const { positionals } = parse(rest, {}, true);
      if (positionals.length !== 1) throw new UsageError('workspaces create needs a name');
      announceWrite(config, client);
      const ws = await client.createWorkspace(positionals[0]);
      return console.log(`created workspace ${ws.name} (${ws.id})`);
    }
    if (group === 'workspaces' && verb === 'list') {
      const { values } = parse(rest, { json: { type: 'boolean' } });
      const rows = await client.listWorkspaces();
      return console.log(values.json ? JSON.stringify(rows, null, 2) : table(rows, ['id', 'name', 'created_at']));
    }
    if (group === 'usage' && verb === 'requests') return await usageRequests(client, rest);
    if (group === 'usage')
      return await usage(
        client,
        [verb, ...rest].filter((a): a is string => a !== undefined),
      );
    throw new UsageError(`unknown command: ${[group, verb].filter(Boolean).join(' ')}`);
  } finally {
    await client.close();
  }
}

run(process.argv.slice(2)).catch((err) => {
  if (err instanceof UsageError) console.error(`${err.message}\n\n${USAGE}`);
  else console.error(err instanceof CliError ? err.message : `error: ${err.message}`);
  process.exitCode = err instanceof UsageError || err instanceof CliError ? 2 : 1;
});
