import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import postgres from 'postgres';
import { createClient } from 'redis';

/**
 * One fresh Postgres database per test run (created here, dropped at the end), so runs never see
 * each other's rows. With CI=true, missing or unreachable Postgres/Redis fail the run: no skipping.
 */
export default async function setup(project: TestProject) {
  // Tests that start the gateway or the CLI as processes run the compiled dist/, as `npm start` does.
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: 'inherit' });
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  const baseUrl = process.env.TEST_DATABASE_URL;
  const redisUrl = process.env.TEST_REDIS_URL;
  if (ci && (!baseUrl || !redisUrl)) {
    throw new Error('CI=true requires TEST_DATABASE_URL and TEST_REDIS_URL (see .ci/run)');
  }
  if (redisUrl) {
    const redis = createClient({ url: redisUrl, socket: { connectTimeout: 3_000, reconnectStrategy: false } });
    redis.on('error', () => {});
    try {
      await redis.connect();
      await redis.ping();
    } catch (err) {
      throw new Error(`TEST_REDIS_URL does not answer: ${(err as Error).message}`);
    } finally {
      redis.destroy?.();
    }
    project.provide('redisUrl', redisUrl);
  } else {
    project.provide('redisUrl', '');
  }
  if (!baseUrl) {
    project.provide('postgresUrl', '');
    return;
  }
  const name = `cmg_test_${Date.now()}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    await admin.unsafe(`create database ${name}`);
  } catch (err) {
    await admin.end();
    throw new Error(`TEST_DATABASE_URL does not answer: ${(err as Error).message}`);
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  project.provide('postgresUrl', url.toString());
  return async () => {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
    redisUrl: string;
  }
}
