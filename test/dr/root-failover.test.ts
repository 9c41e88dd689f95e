// A long-running process's root (src/entrypoints/root.ts): after a signed primary change both
// the app_user pool and the owner pool (maintenance, backups, alarm history) follow it, and the
// operations dependencies it hands the jobs are the CLI's (Redis, DB CPU source, backups).
// On a redis-server of this test's own: the primary-change channel is deployment-wide.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { ScratchRedis } from '../helpers/redis-server.js';
import { TEST_ROLE_PASSWORD } from '../helpers/env.js';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/logging.js';
import { Shutdown } from '../../src/entrypoints/shutdown.js';
import { openRoot, type Root } from '../../src/entrypoints/root.js';
import { endpoint, publishPrimary, PRIMARY_CHANNEL } from '../../src/db/app-pools.js';

let db: TestDatabase;
let redis: ScratchRedis;
let root: Root;
let shutdown: Shutdown;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'accunode-i16-root-'));
const log = createLogger('silent');

beforeAll(async () => {
  db = await createTestDatabase();
  redis = await ScratchRedis.start();
  // The same server under another spelling stands in for the promoted replica.
  const other = db.adminUrl.replace('127.0.0.1', 'localhost');
  const config = loadConfig({
    DATABASE_URL: db.appUrl,
    DATABASE_ADMIN_URL: db.adminUrl,
    DATABASE_READ_URLS: other,
    REDIS_URL: redis.url,
    ACCUNODE_DATA_DIR: dataDir,
    MONITORING_USER_PASSWORD: TEST_ROLE_PASSWORD,
  });
  shutdown = new Shutdown(log);
  root = await openRoot(config, log, shutdown, { name: 'accunode-test-root', prepare: false });
});

afterAll(async () => {
  await shutdown?.run();
  await redis?.stop();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the composition root', () => {
  it('hands the jobs the same operations dependencies as the CLI: Redis, DB CPU source, backups', async () => {
    const ops = await root.ops();
    expect(ops.redis).toBe(root.redis);
    expect(ops.dbCpu).toBeDefined();
    expect(ops.backups).toBeDefined();
    expect(await ops.backups!.lastGoodBackup()).toBe('unconfigured');
    const [who] = await ops.sql<[{ u: string }]>`select current_user as u`;
    expect(who!.u).toBe('monitoring_user');
  });

  it('the owner pool follows a signed primary change, like the app pool', async () => {
    const here = endpoint(db.adminUrl);
    const to = here.replace('127.0.0.1', 'localhost');
    const [{ secret }] = await db.adminSql<[{ secret: Buffer }]>`select secret from app_secrets where name = 'dr'`;
    const pub = new Redis(redis.url);
    try {
      await publishPrimary(pub, { from: here, to, at: new Date().toISOString() }, PRIMARY_CHANNEL, secret);
    } finally {
      pub.disconnect();
    }
    for (let i = 0; i < 200 && root.db.adminPools.endpoint === here; i++) await new Promise((r) => setTimeout(r, 20));
    expect(root.db.adminPools.endpoint).toBe(to);
    if (endpoint(db.appUrl) === here) expect(root.appPools.endpoint).toBe(to);
    // Still a working owner connection, on the new server.
    const [r] = await root.adminSql<[{ ok: number }]>`select 1 as ok`;
    expect(r!.ok).toBe(1);
  });
});
