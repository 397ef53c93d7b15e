import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { databaseIdentity } from './identity.js';

const pg = (url: string) => databaseIdentity({ databaseUrl: url, dataDir: './.data' });

describe('database identity', () => {
  it('masks the password and drops query options (they may hold secrets too) in the label', () => {
    const id = pg('postgres://app:s3cr%40t@db.internal:6543/cmg?sslmode=require&password=other');
    expect(id.kind).toBe('postgres');
    expect(id.label).toBe('postgres://app:***@db.internal:6543/cmg (+ options)');
    expect(JSON.stringify(id)).not.toMatch(/s3cr|other/);
    expect(pg('postgresql://postgres@127.0.0.1/postgres').label).toBe('postgresql://postgres@127.0.0.1:5432/postgres');
  });

  it('fingerprints the server and the database, never the credentials', () => {
    const a = pg('postgres://app:one@db.internal:5432/cmg');
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(pg('postgres://other:two@DB.internal/cmg?sslmode=require').fingerprint).toBe(a.fingerprint);
    expect(pg('postgres://app:one@db.internal:5432/cmg2').fingerprint).not.toBe(a.fingerprint);
    expect(pg('postgres://app:one@db.internal:5433/cmg').fingerprint).not.toBe(a.fingerprint);
    expect(pg('postgres://app:one@db2.internal:5432/cmg').fingerprint).not.toBe(a.fingerprint);
    // Loopback spellings are one server; no database name means the user's.
    expect(pg('postgres://u@localhost/u').fingerprint).toBe(pg('postgres://u@127.0.0.1:5432').fingerprint);
  });

  it('an embedded database is its real directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cmg-id-'));
    try {
      symlinkSync(dir, `${dir}-link`);
      const id = databaseIdentity({ dataDir: dir });
      expect(id).toMatchObject({ kind: 'pglite', label: expect.stringContaining(dir) });
      expect(databaseIdentity({ dataDir: `${dir}-link` }).fingerprint).toBe(id.fingerprint);
      expect(databaseIdentity({ dataDir: `${dir}/../${dir.split('/').at(-1)}` }).fingerprint).toBe(id.fingerprint);
      expect(databaseIdentity({ dataDir: join(dir, 'other') }).fingerprint).not.toBe(id.fingerprint);
      expect(pg('postgres://u@localhost/u').fingerprint).not.toBe(id.fingerprint);
    } finally {
      rmSync(`${dir}-link`, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
