// The failover drill on private clusters (initdb as postgres on free ports): a fixed-rate write
// load, the primary SIGKILLed, failover, writes resuming through the same pool (no restart),
// acknowledged writes counted afterwards. RTO is reported, not asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDrill, type DrillReport } from '../../src/ops/dr/drill.js';
import { startScratchRedis, type ScratchRedis } from '../ops/servers.js';

let redis: ScratchRedis;
const reports: DrillReport[] = [];

beforeAll(async () => {
  redis = await startScratchRedis();
});
afterAll(async () => {
  await redis?.stop();
  for (const r of reports) process.stdout.write(`[drill] ${JSON.stringify(r)}\n`);
});

describe('dr drill', () => {
  it('synchronous replication: no acknowledged write is lost, writes resume without a restart, the old primary rejoins as a replica', async () => {
    const r = await runDrill({ mode: 'sync', rate: 200, warmupMs: 2000, afterMs: 1000, checkIntervalMs: 300, redisUrl: redis.url, withRejoin: true });
    reports.push(r);
    expect(r.writes_acknowledged).toBeGreaterThan(200);
    expect(r.rpo_writes_lost).toBe(0);
    expect(r.writes_after_failover).toBeGreaterThan(0);
    expect(r.rto_ms).not.toBeNull();
    expect(r.pool_switched_without_restart).toBe(true);
    expect(r.failover.published).toBe(true);
    expect(r.failover.recorded).toBe(true);
    expect(r.failover.synchronous_cleared).toBe(true);
    expect(r.reads_during_outage.from_replica).toBeGreaterThan(0);
    expect(r.rejoined_as_replica).toBe(true);
  }, 120_000);

  it('asynchronous replication: reports RTO and RPO', async () => {
    const r = await runDrill({ mode: 'async', rate: 200, warmupMs: 2000, afterMs: 1000, checkIntervalMs: 300, redisUrl: redis.url });
    reports.push(r);
    expect(r.writes_after_failover).toBeGreaterThan(0);
    expect(r.pool_switched_without_restart).toBe(true);
    expect(r.rpo_writes_lost).toBeGreaterThanOrEqual(0);
  }, 120_000);
});
