import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSpillFiles } from './spill-file.js';

const freshDir = () => join(mkdtempSync(join(tmpdir(), 'spill-')), 'data');

describe('spill files', () => {
  it('appends JSON lines readable only by this user, creating the directory', () => {
    const dir = freshDir();
    const s = createSpillFiles<{ id: number }>(dir, 'usage');
    expect(s.hasPending()).toBe(false); // no directory yet
    s.append([]);
    expect(existsSync(dir)).toBe(false); // nothing to write, nothing made
    s.append([{ id: 1 }, { id: 2 }]);
    s.append([{ id: 3 }]);
    expect(readFileSync(join(dir, 'usage.jsonl'), 'utf8')).toBe('{"id":1}\n{"id":2}\n{"id":3}\n');
    expect(statSync(join(dir, 'usage.jsonl')).mode & 0o777).toBe(0o600);
    expect(s.hasPending()).toBe(true);
  });

  it('claims the live file and earlier unfinished replays, oldest first, and leaves other files alone', () => {
    const dir = freshDir();
    const s = createSpillFiles<{ id: number }>(dir, 'usage');
    s.append([{ id: 1 }]);
    writeFileSync(join(dir, 'usage.1000.1.replay.jsonl'), '{"id":0}\n');
    writeFileSync(join(dir, 'memory-spill.jsonl'), '{"id":99}\n');
    writeFileSync(join(dir, 'memory-spill.1.1.replay.jsonl'), '{"id":98}\n');
    writeFileSync(join(dir, 'usage.notes.txt'), 'x');
    s.deadLetter({ record: { id: 7 } });
    const claimed = s.claim();
    expect(claimed.map((p) => p.slice(dir.length + 1))).toEqual([
      'usage.1000.1.replay.jsonl',
      expect.stringMatching(/^usage\.\d+\.\d+\.replay\.jsonl$/),
    ]);
    expect(claimed.flatMap((p) => s.read(p))).toEqual([{ id: 0 }, { id: 1 }]);
    expect(existsSync(join(dir, 'usage.jsonl'))).toBe(false); // new spills start a new live file
    for (const p of claimed) s.remove(p);
    expect(readdirSync(dir).sort()).toEqual([
      'memory-spill.1.1.replay.jsonl',
      'memory-spill.jsonl',
      'usage.deadletter.jsonl',
      'usage.notes.txt',
    ]);
    // Dead letters and other names are never pending replay.
    expect(s.hasPending()).toBe(false);
    expect(createSpillFiles(dir, 'memory-spill').hasPending()).toBe(true);
  });

  it('claims nothing when there is no directory', () => {
    expect(createSpillFiles(freshDir(), 'usage').claim()).toEqual([]);
  });

  it('reads past blank lines and a torn last line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spill-'));
    const path = join(dir, 'usage.1.1.replay.jsonl');
    writeFileSync(path, '{"id":1}\n\n  \n{"id":2}\n{"id":');
    expect(createSpillFiles(dir, 'usage').read(path)).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('never reads a device, whatever its name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spill-'));
    const path = join(dir, 'usage.1.1.replay.jsonl');
    symlinkSync('/dev/zero', path);
    expect(createSpillFiles(dir, 'usage').read(path)).toEqual([]);
  });

  it('keeps dead letters apart, one JSON line each', () => {
    const dir = freshDir();
    const s = createSpillFiles(dir, 'usage');
    s.deadLetter({ error: { code: '22P05' }, record: { id: 1 } });
    s.deadLetter({ error: { code: '23505' }, record: { id: 2 } });
    expect(readFileSync(join(dir, 'usage.deadletter.jsonl'), 'utf8')).toBe(
      '{"error":{"code":"22P05"},"record":{"id":1}}\n{"error":{"code":"23505"},"record":{"id":2}}\n',
    );
    expect(statSync(join(dir, 'usage.deadletter.jsonl')).mode & 0o777).toBe(0o600);
    expect(s.claim()).toEqual([]);
  });

  it('removing a file already gone is fine', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spill-'));
    expect(() => createSpillFiles(dir, 'usage').remove(join(dir, 'usage.9.9.replay.jsonl'))).not.toThrow();
  });
});
