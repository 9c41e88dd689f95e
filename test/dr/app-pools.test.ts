import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppPools } from '../../src/db/app-pools.js';
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
});
