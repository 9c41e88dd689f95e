import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { buildApp } from '../../src/http/app.js';
import { createPool } from '../../src/db/pool.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/env.js';

let db: TestDatabase;
let redis: Redis;
beforeAll(async () => {
  db = await createTestDatabase();
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  redis.disconnect();
  await db.drop();
});

const log = pino({ level: 'silent' });

describe('health', () => {
  it('/health is liveness; /health/ready checks PostgreSQL, Redis and models', async () => {
    const app = await buildApp({ log, sql: db.appSql, redis, modelsReady: () => true });
    const live = await app.inject('/health');
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ status: 'ok' });
    const ready = await app.inject('/health/ready');
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks.postgres.ok).toBe(true);
    expect(ready.json().checks.redis.ok).toBe(true);
    await app.close();
  });

  it('answers 503 naming the dependency that is down, without leaking credentials', async () => {
    const deadSql = createPool('postgres://app_user:hunter2@127.0.0.1:1/nope', { max: 1, connectTimeoutSeconds: 1 });
    const deadRedis = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
    deadRedis.on('error', () => {});
    const app = await buildApp({ log, sql: deadSql, redis: deadRedis, modelsReady: () => false });
    const res = await app.inject('/health/ready');
    expect(res.statusCode).toBe(503);
    const body = res.json();
    expect(body.checks.postgres.ok).toBe(false);
    expect(body.checks.redis.ok).toBe(false);
    expect(body.checks.models.ok).toBe(false);
    expect(res.body).not.toContain('hunter2');
    await app.close();
    await deadSql.end({ timeout: 1 });
    deadRedis.disconnect();
  });

  it('unknown routes get the JSON error shape', async () => {
    const app = await buildApp({ log, sql: db.appSql, redis });
    // (Other paths belong to the web app's client-side router when it is built.)
    const res = await app.inject('/api/v1/nope');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: { code: 'not_found' } });
    await app.close();
  });
});
