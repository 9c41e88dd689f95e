import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { AppPools, drKeyFromDatabase, endpoint, publishPrimary, type PrimaryChange } from '../../src/db/app-pools.js';
import { TEST_REDIS_URL } from '../helpers/env.js';
import { createPool } from '../../src/db/pool.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

describe('AppPools', () => {
  it('forwards to the current pool and tells LISTEN holders to re-open after a switch', async () => {
    const pools = new AppPools(db.adminUrl, (u) => createPool(u, { max: 1 }), undefined, 1);
    const seen: string[] = [];
    const sub = await pools.sql.listen('accunode_test_channel', (m) => seen.push(m));
    let switches = 0;
    let relistened: { unlisten: () => Promise<void> } | null = null;
    pools.onSwitch(() => {
      switches++;
      void (async () => {
        await sub.unlisten().catch(() => {});
        relistened = await pools.sql.listen('accunode_test_channel', (m) => seen.push('after:' + m));
      })();
    });
    // Same server under another spelling: a switch as a failover would make it.
    pools.switchTo(db.adminUrl.replace('127.0.0.1', 'localhost'));
    expect(switches).toBe(1);
    for (let i = 0; i < 50 && !relistened; i++) await new Promise((r) => setTimeout(r, 20));
    await db.adminSql`select pg_notify('accunode_test_channel', 'hello')`;
    for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(['after:hello']);
    expect(pools.endpoint).toMatch(/^localhost:/);
    const [r] = await pools.sql<{ ok: number }[]>`select 1 as ok`;
    expect(r!.ok).toBe(1);
    await relistened!.unlisten();
    await pools.end({ timeout: 1 });
  });

  it('follows only primary changes signed with the database key, to a configured host, newer than the last one', async () => {
    const channel = `accunode:dr:test:${randomBytes(4).toString('hex')}`;
    const pub = new Redis(TEST_REDIS_URL);
    const sub = new Redis(TEST_REDIS_URL);
    const pools = new AppPools(db.adminUrl, (u) => createPool(u, { max: 1 }), undefined, 1);
    const here = pools.endpoint;
    const other = here.replace('127.0.0.1', 'localhost');
    try {
      const [{ secret }] = await db.adminSql<[{ secret: Buffer }]>`select secret from app_secrets where name = 'dr'`;
      // A change written before this process started, signed: read from the history.
      await publishPrimary(pub, { from: 'db-old:5432', to: here, at: '2026-01-01T00:00:00.000Z' }, channel, secret);
      const stop = await pools.follow(sub, pub, channel, { key: drKeyFromDatabase(db.appSql), allowed: [here, other] });
      const change = (at: string, to = other): PrimaryChange => ({ from: here, to, at });
      // What someone with only Redis access can send: unsigned, signed with a key of their own,
      // to a host of their choosing (correctly signed, as a stolen key would), and a replay.
      await publishPrimary(pub, change('2026-02-01T00:00:00.000Z'), channel);
      await publishPrimary(pub, change('2026-02-01T00:00:01.000Z'), channel, randomBytes(32));
      await publishPrimary(pub, change('2026-02-01T00:00:02.000Z', '127.0.0.9:5432'), channel, secret);
      await publishPrimary(pub, change('2025-12-31T00:00:00.000Z'), channel, secret);
      // And the genuine announcement, last: once it is applied, all of the above were handled.
      await publishPrimary(pub, change('2026-02-01T00:00:03.000Z'), channel, secret);
      for (let i = 0; i < 200 && pools.endpoint === here; i++) await new Promise((r) => setTimeout(r, 20));
      expect(pools.switches.map((x) => ({ from: x.from, to: x.to, at: x.at }))).toEqual([{ from: endpoint(db.adminUrl), to: other, at: '2026-02-01T00:00:03.000Z' }]);
      const [r] = await pools.sql<{ ok: number }[]>`select 1 as ok`;
      expect(r!.ok).toBe(1);
      await stop();
    } finally {
      await pub.del(`${channel}:history`);
      pub.disconnect();
      sub.disconnect();
      await pools.end({ timeout: 1 });
    }
  });
});
