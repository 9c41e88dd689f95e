// The database and Redis figures of /metrics. The registry and the application's own counters
// live in src/metrics.ts (re-exported here for existing importers). A StatsCollector reads these
// figures at most every 15 s, in a handful of queries, whatever the scrape rate and however many
// series (never a query per series).
import type { Counter } from 'prom-client';
import { metrics, createMetrics, type AppMetrics } from '../../metrics.js';

export { metrics, createMetrics, type AppMetrics };
import type { Redis } from 'ioredis';
import type { Sql } from '../../db/pool.js';
import { connectionCounts, databaseTotals, pgStatStatementsStatus, replicationLag } from './pg.js';
import { cpuSeconds, memoryFigure, num, parseInfo, totalKeys } from './redis.js';
import { errMessage, type ReplicaConn } from '../types.js';
import type { Logger } from '../../logging.js';
import { collectModelDrift } from './model-drift-metrics.js';
import type { QueueMetrics } from './queue-metrics.js';

/** Mirrors a cumulative server counter into a prom-client Counter (which only increments). */
class CounterMirror {
  private last = new Map<string, number>();
  set(counter: Counter<string>, labels: Record<string, string>, value: number): void {
    const key = (counter as unknown as { name: string }).name + JSON.stringify(labels);
    const prev = this.last.get(key);
    // First reading or a server restart (value went down): count what the server has.
    const inc = prev === undefined || value < prev ? value : value - prev;
    this.last.set(key, value);
    if (inc > 0) counter.inc(labels, inc);
  }
}

interface StatsCollectorDeps {
  /** monitoring_user pool (a single connection is plenty). */
  sql?: Sql;
  redis?: Array<{ instance: string; client: Redis }>;
  replicas?: ReplicaConn[];
  slowQueryMs?: number;
  replicaLagLimitSeconds?: number;
  backupMaxAgeHours?: number;
  lastGoodBackup?: () => Promise<Date | null>;
  dbCpu?: () => Promise<number | null>;
  /** Queue depth and job run times (ops/monitoring/queue-metrics.ts). */
  queues?: QueueMetrics;
  log?: Logger;
  /** Minimum time between two collections; default 15 s. */
  minIntervalMs?: number;
  nowMs?: () => number;
}

export interface StatsCollector {
  /** Reads the figures unless the last reading is younger than minIntervalMs; concurrent callers share one reading. */
  maybeCollect(): Promise<void>;
  collections(): number;
}

export function createStatsCollector(m: AppMetrics, deps: StatsCollectorDeps): StatsCollector {
  const min = deps.minIntervalMs ?? 15_000;
  const nowMs = deps.nowMs ?? (() => Date.now());
  const mirror = new CounterMirror();
  let last = -Infinity;
  let running: Promise<void> | null = null;
  let count = 0;

  const collectPg = async (sql: Sql) => {
    const c = await connectionCounts(sql);
    m.pgConnections.reset();
    for (const s of c.byState) m.pgConnections.set({ state: s.state }, s.count);
    m.pgConnectionsTotal.set(c.total);
    m.pgMaxConnections.set(c.maxConnections);
    const t = await databaseTotals(sql);
    m.pgDatabaseSize.set({ database: t.database }, t.size_bytes);
    if (t.blks_hit + t.blks_read > 0) m.pgCacheHitRatio.set({ database: t.database }, t.blks_hit / (t.blks_hit + t.blks_read));
    mirror.set(m.pgTransactions as Counter<string>, {}, t.xacts);
    const pss = await pgStatStatementsStatus(sql);
    if (pss.available) {
      const [r] = await sql<{ calls: number }[]>`
        select coalesce(sum(calls), 0)::float8 as calls from pg_stat_statements where mean_exec_time > ${deps.slowQueryMs ?? 1000}`;
      m.pgSlowStatementCalls.set({ threshold_ms: String(deps.slowQueryMs ?? 1000) }, r?.calls ?? 0);
    }
    // Its own failure (e.g. a role without ops_snapshots) must not blank the database figures.
    await collectModelDrift(m, sql).catch((err) => {
      m.statsCollectErrors.inc({ source: 'model_drift' });
      deps.log?.warn({ err: errMessage(err) }, 'model drift metrics unavailable');
    });
    const lag = await replicationLag(sql, deps.replicas ?? []);
    m.pgReplicationLag.reset();
    for (const l of lag) if (l.lag_seconds !== null) m.pgReplicationLag.set({ replica: l.replica }, l.lag_seconds);
    if (deps.replicaLagLimitSeconds) m.pgReplicationLagLimit.set(deps.replicaLagLimitSeconds);
  };

  const collectRedis = async (instance: string, client: Redis) => {
    try {
      const info = parseInfo(await client.info('everything'));
      m.redisUp.set({ instance }, 1);
      m.redisMemoryUsed.set({ instance }, num(info, 'used_memory') ?? 0);
      const mem = memoryFigure(info);
      if (mem) m.redisMemoryPercent.set({ instance }, mem.percent);
      m.redisKeys.set({ instance }, totalKeys(info));
      m.redisClients.set({ instance }, num(info, 'connected_clients') ?? 0);
      mirror.set(m.redisCpuSeconds as Counter<string>, { instance }, cpuSeconds(info));
      mirror.set(m.redisEvictedKeys as Counter<string>, { instance }, num(info, 'evicted_keys') ?? 0);
      mirror.set(m.redisExpiredKeys as Counter<string>, { instance }, num(info, 'expired_keys') ?? 0);
      mirror.set(m.redisHits as Counter<string>, { instance }, num(info, 'keyspace_hits') ?? 0);
      mirror.set(m.redisMisses as Counter<string>, { instance }, num(info, 'keyspace_misses') ?? 0);
    } catch (err) {
      m.redisUp.set({ instance }, 0);
      throw err;
    }
  };

  const collect = async () => {
    const jobs: Array<[string, () => Promise<void>]> = [];
    if (deps.sql) jobs.push(['postgres', () => collectPg(deps.sql!)]);
    for (const r of deps.redis ?? []) jobs.push([`redis:${r.instance}`, () => collectRedis(r.instance, r.client)]);
    if (deps.dbCpu)
      jobs.push([
        'db_cpu',
        async () => {
          const v = await deps.dbCpu!();
          if (v !== null) m.dbCpuPercent.set({ source: 'db_host' }, v);
        },
      ]);
    if (deps.lastGoodBackup)
      jobs.push([
        'backups',
        async () => {
          const at = await deps.lastGoodBackup!();
          if (at) m.backupLastSuccess.set({ source: 'backups' }, at.getTime() / 1000);
        },
      ]);
    if (deps.queues) jobs.push(['queues', () => deps.queues!.collect(m)]);
    if (deps.backupMaxAgeHours) m.backupMaxAge.set(deps.backupMaxAgeHours * 3600);
    await Promise.all(
      jobs.map(async ([source, fn]) => {
        try {
          await fn();
        } catch (err) {
          m.statsCollectErrors.inc({ source });
          deps.log?.warn({ source, err: errMessage(err) }, 'metrics collection failed');
        }
      }),
    );
    count++;
    m.statsCollectedAt.set(nowMs() / 1000);
  };

  return {
    async maybeCollect() {
      if (running) return running;
      if (nowMs() - last < min) return;
      last = nowMs();
      running = collect().finally(() => {
        running = null;
      });
      return running;
    },
    collections: () => count,
  };
}
