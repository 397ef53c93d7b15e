import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Embedded PGlite admits one process at a time. The gateway that holds a data directory says so
 * in `DATA_DIR/gateway.lock` (pid, address, and a random admin token readable only by this user),
 * so the CLI can go through that gateway's admin API instead of opening the database itself.
 */
export interface InstanceLock {
  pid: number;
  url: string;
  token: string;
}

const lockPath = (dataDir: string) => join(dataDir, 'gateway.lock');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The live gateway holding this data directory, if any (a stale lock is ignored). */
export function readInstanceLock(dataDir: string): InstanceLock | null {
  try {
    const lock = JSON.parse(readFileSync(lockPath(dataDir), 'utf8')) as InstanceLock;
    return lock.pid !== process.pid && alive(lock.pid) ? lock : null;
  } catch {
    return null;
  }
}

export function newLocalAdminToken(): string {
  return randomBytes(32).toString('base64url');
}

export function writeInstanceLock(dataDir: string, lock: InstanceLock): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(lockPath(dataDir), JSON.stringify(lock), { mode: 0o600 });
}

export function removeInstanceLock(dataDir: string): void {
  try {
    const lock = JSON.parse(readFileSync(lockPath(dataDir), 'utf8')) as InstanceLock;
    if (lock.pid === process.pid) rmSync(lockPath(dataDir));
  } catch {
    // nothing to remove
  }
}
