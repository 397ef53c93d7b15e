// `npm run bench:ledger`: (a) the usage writer's sustained rate into Postgres (and PGlite),
// (b) a month's key × model report over 1,000,000 records. Writes "## Usage ledger" in RESULTS.md.
// Env: BENCH_DATABASE_URL (Postgres server; default postgres://postgres@127.0.0.1:5432/postgres; a
// scratch database cmg_bench_<hex> is made and dropped), BENCH_QUICK=1 (small counts, RESULTS.md
// untouched), BENCH_PGLITE=0 (skip the embedded run).

import { openDatabase } from '../src/db/client.js';
import { commandLine, createRunGuard, gitRevision, loadavg, redactUrl } from './bench-env.js';
import { measureReport, type ReportResult } from './ledger-report.js';
import { makeRecords, measureWriter, type WriteResult } from './ledger-write.js';
import { createScratchDatabase, machineBusySeconds } from './procs.js';
import { machineInfo, saveResults } from './report.js';

const env = process.env;
const quick = env.BENCH_QUICK === '1';
const serverUrl = env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const N_WRITE = quick ? 20_000 : 200_000;
const N_SWEEP = quick ? 10_000 : 50_000;
const N_PGLITE = quick ? 5_000 : 20_000;
const N_REPORT = quick ? 100_000 : 1_000_000;
const WRITE_TARGET = 5_000;
const REPORT_TARGET_MS = 200;
const guard = createRunGuard('bench:ledger', 15 * 60_000);

const f0 = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
const ok = (b: boolean) => (b ? 'PASS' : '**FAIL**');

/** Runs fn and returns its result with the share of the machine's 2 cores that was busy meanwhile. */
async function busy<T>(fn: () => Promise<T>): Promise<{ value: T; busyPct: number; selfPct: number }> {
  const b0 = machineBusySeconds();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { value, busyPct: ((machineBusySeconds() - b0) / wall) * 100, selfPct: ((c.user + c.system) / 1e6 / wall) * 100 };
}

const writeRow = (label: string, w: WriteResult, target: boolean) => {
  const consistent = w.rowsInTable === w.records && w.rolledUpRequests === w.records && w.costMatches && w.spilled === 0;
  return `| ${label} | ${f0(w.records)} | ${w.batchSize} | ${w.seconds.toFixed(2)} s | ${f0(w.rate)} records/s | ${f0(w.rowsInTable)} / ${f0(w.rolledUpRequests)} ${w.costMatches ? '(cost ✓)' : '(cost ✗)'} | ${target ? `≥ ${f0(WRITE_TARGET)}/s` : ''} | ${target ? ok(w.rate >= WRITE_TARGET && consistent) : consistent ? 'consistent' : '**INCONSISTENT**'} |`;
};

async function main() {
  const loadBefore = loadavg();
  console.log(`# bench:ledger on ${machineInfo()}; loadavg ${loadBefore}`);
  const scratch = await createScratchDatabase(serverUrl);
  guard.push(scratch.drop);
  console.log(`scratch database: ${redactUrl(scratch.url)}`);
  const pg = await openDatabase({ url: scratch.url });
  guard.push(() => pg.close());

  // (a) write rate, Postgres: the default batch size on N_WRITE records, then a sweep.
  const records = makeRecords(N_WRITE, 1);
  const main = await busy(() => measureWriter(pg.db, records, 500));
  console.log(
    `write @500: ${f0(main.value.rate)} records/s`,
    main.value,
    `busy ${main.busyPct.toFixed(0)}% of 2 cores, self ${main.selfPct.toFixed(0)}% of one`,
  );
  const sweep: WriteResult[] = [];
  for (const size of [100, 500, 1000]) {
    const r = await measureWriter(pg.db, makeRecords(N_SWEEP, 10 + size), size);
    console.log(`sweep @${size}: ${f0(r.rate)} records/s`, r);
    sweep.push(r);
  }

  // (a') PGlite (embedded, in memory), smaller count.
  let pglite: WriteResult | undefined;
  if (env.BENCH_PGLITE !== '0') {
    const lite = await openDatabase({ dataDir: undefined });
    try {
      pglite = await measureWriter(lite.db, makeRecords(N_PGLITE, 2), 500);
      console.log(`pglite @500: ${f0(pglite.rate)} records/s`, pglite);
    } finally {
      await lite.close();
    }
  }

  // (b) report over N_REPORT seeded records.
  const rep = await busy(() => measureReport(pg.db, { records: N_REPORT, keys: 200, models: 20, warmups: 3, runs: 30 }));
  const r: ReportResult = rep.value;
  console.log(`report p50 ${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms; raw ${r.rawMs.toFixed(0)} ms`, { ...r, timings: undefined });
  const loadAfter = loadavg();

  const consistent = (w: WriteResult) =>
    w.rowsInTable === w.records && w.rolledUpRequests === w.records && w.costMatches && w.spilled === 0;
  const table = [
    '| Measurement | Records | Batch | Time | Result | usage_records / Σ usage_daily.requests | Target | Pass |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    writeRow('Writer sustained rate, Postgres', main.value, true),
    ...sweep.map((w) => writeRow(`Writer, Postgres, batch ${w.batchSize}`, w, false)),
    ...(pglite ? [writeRow('Writer, PGlite (in memory)', pglite, false)] : []),
    `| Report key × model, ${r.from} … ${r.to}, p50 (usageReport, usage_daily) | ${f0(r.records)} | | ${r.p50.toFixed(1)} ms | ${r.reportRows} rows | ${f0(r.reportTotal)} requests | | |`,
    `| Report key × model, p99 of ${r.timings.length} runs | ${f0(r.records)} | | ${r.p99.toFixed(1)} ms | | | < ${REPORT_TARGET_MS} ms | ${ok(r.p99 < REPORT_TARGET_MS && r.reportTotal === r.records)} |`,
    `| Same report as a group-by on usage_records (once, contrast) | ${f0(r.records)} | | ${r.rawMs.toFixed(0)} ms | ${r.rawRows} rows | ${r.rawMatches ? 'same rows and total' : '**differs**'} | | |`,
  ].join('\n');
  console.log(`\n${table}\n`);

  const command = commandLine('bench:ledger', ['BENCH_DATABASE_URL', 'BENCH_QUICK', 'BENCH_PGLITE']);
  const body = [
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${machineInfo()}`,
    `- Database: PostgreSQL on 127.0.0.1 (scratch database \`cmg_bench_<hex>\`, dropped at the end; ${pg.kind}, pool 10); PGlite in memory for the embedded row`,
    `- Gateway code: ${gitRevision()}`,
    `- Command: \`${command}\``,
    `- Load average (1/5/15 min, runnable/total tasks): before ${loadBefore}, after ${loadAfter}. Machine busy during the ${f0(N_WRITE)}-record write: ${main.busyPct.toFixed(0)}% of 2 cores, of which this process (writer, drizzle SQL building, postgres.js) ${main.selfPct.toFixed(0)}% of one core; during seeding + report: ${rep.busyPct.toFixed(0)}% (this process and Postgres included; other engineers' test suites share the machine).`,
    `- All write runs consistent (row count = Σ usage_daily.requests = records enqueued, Σ cost equal in both tables, nothing spilled): ${[main.value, ...sweep, ...(pglite ? [pglite] : [])].every(consistent) ? 'yes' : '**NO**'}`,
    '',
    table,
    '',
    '### Notes',
    '',
    `- Write rate: \`createBatchWriter\` from src/usage/ledger-writer.ts with \`persist = insertUsageBatch(db, batch)\` (as src/usage/ledger.ts, without the spend tracker), default maxBuffered 20,000 and linger 5 ms. Records are built beforehand (3 workspaces, 50 keys, 10 models, created_at spread over the current month, ~3% errors, upstream costs) and enqueued in a tight loop that only pauses (1 ms timer) while the writer's queue is within one batch of maxBuffered, so the writer is never idle and never spills. Time: first enqueue → \`flush()\` resolved. Tables are truncated before each run, so every run starts empty. The writer has one insert in flight at a time; the rate is batch size ÷ round trip of the insert + rollup statement.`,
    `- Report: ${f0(r.records)} usage_records for ${r.from} … ${r.to} (exclusive), ${r.keys} keys × ${r.models} models × ${r.days} days, seeded on the server with \`insert … select … from generate_series\` (${r.seedSeconds.toFixed(1)} s, all four indexes in place); usage_daily built with one \`insert … select … group by day, workspace, key, model\` (the rows the writer maintains; ${f0(r.dailyRows)} rows), then \`vacuum analyze\` (${r.rollupSeconds.toFixed(1)} s together). \`usageReport(db, ['key','model'], {from, to})\` timed 30 times after 3 warm-ups, in this process, including postgres.js decoding and the report's decimal summing of ${r.reportRows} rows. Runs (ms): min ${Math.min(...r.timings).toFixed(1)}, max ${Math.max(...r.timings).toFixed(1)}.`,
    `- Contrast: the same grouping over the raw table (\`select … from usage_records left join api_keys … group by key, model\`) took ${r.rawMs.toFixed(0)} ms once (right after the vacuum, so largely cached): ${(r.rawMs / r.p50).toFixed(0)}× the rollup's p50. The rollup reads ~${f0(r.dailyRows)} rows instead of ${f0(r.records)}.`,
  ].join('\n');
  saveResults({ heading: 'Usage ledger (bench:ledger)', body, quick });
}

void guard.run(main);
