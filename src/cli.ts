import { parseArgs } from 'node:util';
import { openAdminClient, type AdminClient, type KeyCreateInput } from './admin/admin-client.js';
import { loadConfigFromProcess } from './config.js';
import { SCOPES, type Scope } from './keys/key-store.js';

const USAGE = `Usage: npm run cli -- <command>

  keys create --workspace <name> --name <name> [--scopes proxy,reports] [--rpm N] [--tpm N]
              [--budget USD] [--budget-period day|month] [--expires-at ISO-8601] [--json]
  keys list [--workspace <name>] [--json]
  keys revoke <key-id>
  workspaces create <name>
  workspaces list [--json]
  usage [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--group-by day,week,month,workspace,key,model]
        [--workspace <name>] [--key <id|name>] [--model <id>] [--csv]

The workspace named by "keys create" is created when it does not exist yet.`;

class UsageError extends Error {}

function int(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) <= 0) throw new UsageError(`${flag} must be a positive whole number`);
  return Number(value);
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(columns), ...cells.map(line)].join('\n');
}

async function keysCreate(client: AdminClient, args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      workspace: { type: 'string' },
      name: { type: 'string' },
      scopes: { type: 'string' },
      rpm: { type: 'string' },
      tpm: { type: 'string' },
      budget: { type: 'string' },
      'budget-period': { type: 'string' },
      'expires-at': { type: 'string' },
      json: { type: 'boolean' },
    },
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

async function usage(client: AdminClient, args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      'group-by': { type: 'string' },
      workspace: { type: 'string' },
      key: { type: 'string' },
      model: { type: 'string' },
      csv: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const query = { from: values.from, to: values.to, groupBy: values['group-by'], workspace: values.workspace, key: values.key, model: values.model };
  if (values.csv) return process.stdout.write((await client.usage({ ...query, csv: true })) as string);
  const report = (await client.usage(query)) as Record<string, any>;
  if (values.json) return console.log(JSON.stringify(report, null, 2));
  console.log(`usage ${report.from} to ${report.to} (exclusive), grouped by ${report.group_by.join(', ') || 'nothing'}\n`);
  if (report.data.length === 0) return console.log('no usage in this range');
  const columns = Object.keys(report.data[0]);
  console.log(table([...report.data, { [columns[0]]: 'TOTAL', ...report.totals }], columns));
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
  const client = await openAdminClient(loaded.config);
  try {
    if (group === 'keys' && verb === 'create') return await keysCreate(client, rest);
    if (group === 'keys' && verb === 'list') {
      const { values } = parseArgs({ args: rest, options: { workspace: { type: 'string' }, json: { type: 'boolean' } } });
      const keys = await client.listKeys(values.workspace);
      if (values.json) return console.log(JSON.stringify(keys, null, 2));
      return console.log(table(keys.map((k) => ({ ...k, scopes: k.scopes.join(','), status: k.revoked_at ? 'revoked' : 'active' })), ['id', 'workspace', 'name', 'prefix', 'scopes', 'rpm', 'status', 'created_at']));
    }
    if (group === 'keys' && verb === 'revoke') {
      if (!rest[0]) throw new UsageError('keys revoke needs a key id');
      const key = await client.revokeKey(rest[0]);
      return console.log(`revoked ${key.id} at ${key.revoked_at}`);
    }
    if (group === 'workspaces' && verb === 'create') {
      if (!rest[0]) throw new UsageError('workspaces create needs a name');
      const ws = await client.createWorkspace(rest[0]);
      return console.log(`created workspace ${ws.name} (${ws.id})`);
    }
    if (group === 'workspaces' && verb === 'list') {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } } });
      const rows = await client.listWorkspaces();
      return console.log(values.json ? JSON.stringify(rows, null, 2) : table(rows, ['id', 'name', 'created_at']));
    }
    if (group === 'usage') return await usage(client, [verb, ...rest].filter((a): a is string => a !== undefined));
    throw new UsageError(`unknown command: ${[group, verb].filter(Boolean).join(' ')}`);
  } finally {
    await client.close();
  }
}

run(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof UsageError ? `${err.message}\n\n${USAGE}` : `error: ${err.message}`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
