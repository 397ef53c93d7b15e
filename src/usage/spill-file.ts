import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Append-only JSON-lines files under DATA_DIR for records that could not be kept in memory while
 * the database was away. Appends are synchronous so a record is on disk before we forget it.
 * Replay renames the live file first, so new spills never mix with a file being replayed.
 */
export function createSpillFiles<T>(dir: string, name: string) {
  const live = join(dir, `${name}.jsonl`);
  const deadLetters = join(dir, `${name}.deadletter.jsonl`);

  return {
    append(records: T[]): void {
      if (records.length === 0) return;
      mkdirSync(dir, { recursive: true });
      appendFileSync(live, records.map((r) => JSON.stringify(r)).join('\n') + '\n', { mode: 0o600 });
    },

    /** Keeps a record the database refused, with why, for an operator to inspect (never replayed). */
    deadLetter(entry: unknown): void {
      mkdirSync(dir, { recursive: true });
      appendFileSync(deadLetters, JSON.stringify(entry) + '\n', { mode: 0o600 });
    },

    /** Takes every spilled file (the live one and earlier unfinished replays) for replay. */
    claim(): string[] {
      if (!existsSync(dir)) return [];
      if (existsSync(live)) renameSync(live, join(dir, `${name}.${Date.now()}.${process.pid}.replay.jsonl`));
      return readdirSync(dir)
        .filter((f) => f.startsWith(`${name}.`) && f.endsWith('.replay.jsonl'))
        .sort()
        .map((f) => join(dir, f));
    },

    read(path: string): T[] {
      const out: T[] = [];
      // Only a regular file is ours to replay (a link to a device would never end).
      if (!statSync(path).isFile()) return out;
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          out.push(JSON.parse(line) as T);
        } catch {
          // a torn last line from a crash mid-append: the rest of the file is still good
        }
      }
      return out;
    },

    remove(path: string): void {
      rmSync(path, { force: true });
    },

    hasPending(): boolean {
      if (!existsSync(dir)) return false;
      return readdirSync(dir).some((f) => f === `${name}.jsonl` || (f.startsWith(`${name}.`) && f.endsWith('.replay.jsonl')));
    },
  };
}
