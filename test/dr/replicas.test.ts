// Replica routing: a primary and two streaming replicas of our own; one is stopped, one lags.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicaRouter } from '../../src/db/replicas.js';
import { createPool, type Sql } from '../../src/db/pool.js';
import { startLocalCluster, startLocalReplica, type LocalCluster } from '../../src/ops/dr/drill.js';
import { checkServer, failover, SplitBrainRefused } from '../../src/ops/dr/dr.js';
import { rmSync } from 'node:fs';

let primary: LocalCluster;
let r1: LocalCluster;
let r2: LocalCluster;
let psql: Sql;
let router: ReplicaRouter;

async function serverPort(sql: Sql): Promise<number> {
  const [r] = await sql<Array<{ p: string }>>`select current_setting('port') as p`;
  return Number(r!.p);
}

beforeAll(async () => {
  primary = await startLocalCluster();
  psql = createPool(primary.url(), { max: 2 });
  await psql`create table t (id int)`;
  r1 = await startLocalReplica(primary, 'r1');
  r2 = await startLocalReplica(primary, 'r2');
  router = new ReplicaRouter({ urls: [r1.url(), r2.url()], lagLimitSeconds: 1, poolSize: 1 });
}, 60_000);

afterAll(async () => {
  await router?.close();
  await psql?.end();
  for (const c of [r2, r1, primary]) await c?.stop('immediate');
  if (primary) rmSync(primary.root, { recursive: true, force: true });
});

describe('replica routing (DATABASE_READ_URLS)', () => {
  it('uses healthy replicas round robin, skips a stopped one, and falls back to the primary when none is usable', async () => {
    expect(router.get()).toBeNull(); // not checked yet: primary
    await router.check();
    const ports = new Set<number>();
    for (let i = 0; i < 4; i++) ports.add(await serverPort(router.get()!));
    expect(ports).toEqual(new Set([r1.port, r2.port]));

    await r2.stop('immediate');
    const states = await router.check();
    expect(states[1]).toMatchObject({ healthy: false });
    expect(states[1]!.reason).toMatch(/down/);
    for (let i = 0; i < 4; i++) expect(await serverPort(router.get()!)).toBe(r1.port);

    // r1 lags: replay paused while the primary writes.
    await psql`insert into t values (0)`;
    await new Promise((r) => setTimeout(r, 300));
    const rs = createPool(r1.url(), { max: 1 });
    await rs`select pg_wal_replay_pause()`;
    await psql`insert into t values (1)`;
    await new Promise((r) => setTimeout(r, 1500));
    await psql`insert into t values (2)`;
    await new Promise((r) => setTimeout(r, 300));
    const lagging = await router.check();
    expect(lagging[0]).toMatchObject({ healthy: false });
    expect(lagging[0]!.reason).toMatch(/lag/);
    expect(router.get()).toBeNull();

    await rs`select pg_wal_replay_resume()`;
    await new Promise((r) => setTimeout(r, 300));
    await rs.end();
    await router.check();
    expect(await serverPort(router.get()!)).toBe(r1.port);
  });

  it('failover refuses to promote while the primary still accepts writes (split brain)', async () => {
    expect((await checkServer(primary.url())).writable).toBe(true);
    await expect(failover({ primaryUrl: primary.url(), replicaUrl: r1.url(), checks: 3, checkIntervalMs: 50 })).rejects.toBeInstanceOf(SplitBrainRefused);
    const rs = createPool(r1.url(), { max: 1 });
    const [s] = await rs<Array<{ r: boolean }>>`select pg_is_in_recovery() as r`;
    await rs.end();
    expect(s!.r).toBe(true);
  });
});
