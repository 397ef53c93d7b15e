import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { newLocalAdminToken, readInstanceLock, removeInstanceLock, writeInstanceLock } from './instance-lock.js';

const dataDir = () => join(mkdtempSync(join(tmpdir(), 'lock-')), 'data');
const DEAD_PID = 2 ** 22 + 12_345; // above Linux's pid_max: never a live process

describe('instance lock', () => {
  it("shows another live gateway's address and token, in a file only this user can read", () => {
    const dir = dataDir();
    const lock = { pid: process.ppid, url: 'http://127.0.0.1:8080', token: newLocalAdminToken() };
    writeInstanceLock(dir, lock); // creates the data directory too
    expect(readInstanceLock(dir)).toEqual(lock);
    expect(statSync(join(dir, 'gateway.lock')).mode & 0o777).toBe(0o600);
  });

  it('ignores its own lock, a dead holder and a missing or torn file', () => {
    const dir = dataDir();
    expect(readInstanceLock(dir)).toBeNull(); // no directory at all
    writeInstanceLock(dir, { pid: process.pid, url: 'http://x', token: 't' });
    expect(readInstanceLock(dir)).toBeNull();
    writeInstanceLock(dir, { pid: DEAD_PID, url: 'http://x', token: 't' });
    expect(readInstanceLock(dir)).toBeNull();
    writeFileSync(join(dir, 'gateway.lock'), '{"pid":');
    expect(readInstanceLock(dir)).toBeNull();
  });

  it('removes only the lock this process wrote', () => {
    const dir = dataDir();
    writeInstanceLock(dir, { pid: process.ppid, url: 'http://other', token: 't' });
    removeInstanceLock(dir);
    expect(JSON.parse(readFileSync(join(dir, 'gateway.lock'), 'utf8')).url).toBe('http://other');
    writeInstanceLock(dir, { pid: process.pid, url: 'http://me', token: 't' });
    removeInstanceLock(dir);
    expect(existsSync(join(dir, 'gateway.lock'))).toBe(false);
    expect(() => removeInstanceLock(dir)).not.toThrow(); // nothing left to remove
  });

  it('makes long random admin tokens', () => {
    const t = newLocalAdminToken();
    expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newLocalAdminToken()).not.toBe(t);
  });
});
