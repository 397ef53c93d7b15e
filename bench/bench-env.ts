// Small shared pieces for the bench scripts (run.ts, ledger.ts, memory.ts): machine load, git revision, the
// command line as typed, a bounded-run guard and a cleanup stack.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ROOT } from './procs.js';

export const redactUrl = (u: string) => u.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');

/** /proc/loadavg (1, 5, 15 min load averages, runnable/total tasks). */
export function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 4).join(' ');
  } catch {
    return 'unknown';
  }
}

export function gitRevision(): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim();
    return `commit ${rev}${dirty ? ' plus uncommitted changes in src/' : ''}`;
  } catch {
    return 'unknown (no git)';
  }
}

/** `VAR=value … npm run <script>` for the variables that were set (URLs with passwords redacted). */
export function commandLine(script: string, vars: string[]): string {
  return [...vars.filter((k) => process.env[k]).map((k) => `${k}=${redactUrl(process.env[k]!)}`), `npm run ${script}`].join(' ');
}

/** Cleanup functions run in reverse order, once; SIGINT and a hard time limit run them too. */
export function createRunGuard(name: string, limitMs: number) {
  const fns: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const fn of fns.splice(0).reverse()) await fn().catch((err) => console.error(`${name} cleanup:`, err.message));
  };
  const hardStop = setTimeout(() => {
    console.error(`${name}: over ${limitMs / 60_000} minutes, giving up`);
    void cleanup().then(() => process.exit(1));
  }, limitMs);
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  return {
    push: (fn: () => Promise<unknown>) => fns.push(fn),
    async run(main: () => Promise<void>) {
      try {
        await main();
      } catch (err) {
        console.error(`${name} failed:`, err);
        process.exitCode = 1;
      } finally {
        await cleanup();
        clearTimeout(hardStop);
      }
    },
  };
}

export const pct = (n: number, d: number) => `${((n / d) * 100).toFixed(0)}%`;
