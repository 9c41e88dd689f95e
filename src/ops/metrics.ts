// Prometheus metrics (prom-client). One registry per process; the counters and histograms other
// modules increment are fields of AppMetrics:
//
//   import { metrics } from '../ops/metrics.js';
//   metrics.rateLimitRejections.inc({ policy: 'predictions' });
//   metrics.cacheHits.inc({ family: 'company' }); metrics.cacheMisses.inc({ family: 'company' });
//   metrics.queueDepth.set({ queue: 'bulk', state: 'waiting' }, 12);
//   const end = metrics.jobDuration.startTimer({ queue: 'bulk', job: 'predict' }); ...; end({ outcome: 'completed' });
//   metrics.modelInference.observe({ model: 'annual' }, seconds);
//
// The database and Redis figures are read by a StatsCollector at most every 15 s, in a handful
// of queries, whatever the scrape rate and however many series (never a query per series).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Redis } from 'ioredis';
import type { Sql } from '../db/pool.js';
import { connectionCounts, databaseTotals, pgStatStatementsStatus, replicationLag } from './pg.js';
import { cpuSeconds, memoryFigure, num, parseInfo, totalKeys } from './redis.js';
import { errMessage, type ReplicaConn } from './types.js';
import type { Logger } from '../logging.js';
import { collectModelDrift } from './model-drift-metrics.js';

export interface AppMetrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  rateLimitRejections: Counter<'policy'>;
  cacheHits: Counter<'family'>;
  cacheMisses: Counter<'family'>;
  queueDepth: Gauge<'queue' | 'state'>;
  jobDuration: Histogram<'queue' | 'job' | 'outcome'>;
  modelInference: Histogram<'model'>;
  // Database / Redis figures (set by StatsCollector).
  pgConnections: Gauge<'state'>;
  pgConnectionsTotal: Gauge;
  pgMaxConnections: Gauge;
  pgDatabaseSize: Gauge<'database'>;
  pgCacheHitRatio: Gauge<'database'>;
  pgTransactions: Counter;
  pgSlowStatementCalls: Gauge<'threshold_ms'>;
  pgReplicationLag: Gauge<'replica'>;
  pgReplicationLagLimit: Gauge;
  dbCpuPercent: Gauge<'source'>;
  redisUp: Gauge<'instance'>;
  redisMemoryUsed: Gauge<'instance'>;
  redisMemoryPercent: Gauge<'instance'>;
  redisKeys: Gauge<'instance'>;
  redisClients: Gauge<'instance'>;
  redisCpuSeconds: Counter<'instance'>;
  redisEvictedKeys: Counter<'instance'>;
  redisExpiredKeys: Counter<'instance'>;
  redisHits: Counter<'instance'>;
  redisMisses: Counter<'instance'>;
  backupLastSuccess: Gauge<'source'>;
  backupMaxAge: Gauge;
  statsCollectedAt: Gauge;
  statsCollectErrors: Counter<'source'>;
  /** Model drift (issue 15), from the latest stored run: src/ops/model-drift-metrics.ts. */
  modelPsi: Gauge<'kind' | 'input' | 'tenant'>;
  modelMissingShare: Gauge<'kind' | 'input' | 'tenant'>;
  modelDriftComputedAt: Gauge;
}

export function createMetrics(opts: { registry?: Registry; defaultMetrics?: boolean } = {}): AppMetrics {
  const registry = opts.registry ?? new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'accunode_process_' });
  const r = [registry];
  return {
    registry,
    httpDuration: new Histogram({
      name: 'accunode_http_request_duration_seconds',
      help: 'HTTP request latency by route (the route pattern, not the URL) and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    }),
    rateLimitRejections: new Counter({ name: 'accunode_rate_limit_rejections_total', help: 'requests refused with 429 by rate-limit policy', labelNames: ['policy'], registers: r }),
    cacheHits: new Counter({ name: 'accunode_cache_hits_total', help: 'cache hits by key family (prediction, company, user, analytics)', labelNames: ['family'], registers: r }),
    cacheMisses: new Counter({ name: 'accunode_cache_misses_total', help: 'cache misses by key family', labelNames: ['family'], registers: r }),
    queueDepth: new Gauge({ name: 'accunode_queue_depth', help: 'jobs in a queue by state (waiting, active, delayed, failed)', labelNames: ['queue', 'state'], registers: r }),
    jobDuration: new Histogram({
      name: 'accunode_job_duration_seconds',
      help: 'job run time by queue, job name and outcome',
      labelNames: ['queue', 'job', 'outcome'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900],
      registers: r,
    }),
    modelInference: new Histogram({
      name: 'accunode_model_inference_seconds',
      help: 'risk model inference time by model',
      labelNames: ['model'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1],
      registers: r,
    }),
    pgConnections: new Gauge({ name: 'accunode_pg_connections', help: 'client connections by state (all databases of the server)', labelNames: ['state'], registers: r }),
    pgConnectionsTotal: new Gauge({ name: 'accunode_pg_connections_total', help: 'client connections (all databases of the server)', registers: r }),
    pgMaxConnections: new Gauge({ name: 'accunode_pg_max_connections', help: 'live max_connections', registers: r }),
    pgDatabaseSize: new Gauge({ name: 'accunode_pg_database_size_bytes', help: 'size of the application database', labelNames: ['database'], registers: r }),
    pgCacheHitRatio: new Gauge({ name: 'accunode_pg_cache_hit_ratio', help: 'blks_hit / (blks_hit + blks_read) since the statistics reset (absent until blocks were read)', labelNames: ['database'], registers: r }),
    pgTransactions: new Counter({ name: 'accunode_pg_transactions_total', help: 'commits + rollbacks of the application database', registers: r }),
    pgSlowStatementCalls: new Gauge({
      name: 'accunode_pg_slow_statement_calls',
      help: 'calls of statements whose mean time exceeds ALARM_SLOW_QUERY_MS (pg_stat_statements; delta() over a period counts slow calls). Absent when pg_stat_statements is not loaded',
      labelNames: ['threshold_ms'],
      registers: r,
    }),
    pgReplicationLag: new Gauge({ name: 'accunode_pg_replication_lag_seconds', help: 'replay lag per replica', labelNames: ['replica'], registers: r }),
    pgReplicationLagLimit: new Gauge({ name: 'accunode_pg_replication_lag_limit_seconds', help: 'REPLICA_LAG_LIMIT_SECONDS', registers: r }),
    dbCpuPercent: new Gauge({ name: 'accunode_db_cpu_percent', help: 'database host CPU percent; absent when it cannot be measured', labelNames: ['source'], registers: r }),
    redisUp: new Gauge({ name: 'accunode_redis_up', help: '1 when the Redis answered the last collection', labelNames: ['instance'], registers: r }),
    redisMemoryUsed: new Gauge({ name: 'accunode_redis_memory_used_bytes', help: 'used_memory', labelNames: ['instance'], registers: r }),
    redisMemoryPercent: new Gauge({ name: 'accunode_redis_memory_used_percent', help: 'used_memory of maxmemory (of system memory when maxmemory is 0)', labelNames: ['instance'], registers: r }),
    redisKeys: new Gauge({ name: 'accunode_redis_keys', help: 'keys in all databases', labelNames: ['instance'], registers: r }),
    redisClients: new Gauge({ name: 'accunode_redis_connected_clients', help: 'connected_clients', labelNames: ['instance'], registers: r }),
    redisCpuSeconds: new Counter({ name: 'accunode_redis_cpu_seconds_total', help: 'used_cpu_sys + used_cpu_user', labelNames: ['instance'], registers: r }),
    redisEvictedKeys: new Counter({ name: 'accunode_redis_evicted_keys_total', help: 'evicted_keys', labelNames: ['instance'], registers: r }),
    redisExpiredKeys: new Counter({ name: 'accunode_redis_expired_keys_total', help: 'expired_keys', labelNames: ['instance'], registers: r }),
    redisHits: new Counter({ name: 'accunode_redis_keyspace_hits_total', help: 'keyspace_hits', labelNames: ['instance'], registers: r }),
    redisMisses: new Counter({ name: 'accunode_redis_keyspace_misses_total', help: 'keyspace_misses', labelNames: ['instance'], registers: r }),
    backupLastSuccess: new Gauge({ name: 'accunode_backup_last_success_timestamp_seconds', help: 'time of the last good backup; absent when no backup source is configured', labelNames: ['source'], registers: r }),
    backupMaxAge: new Gauge({ name: 'accunode_backup_max_age_seconds', help: 'BACKUP_MAX_AGE_HOURS in seconds', registers: r }),
    modelPsi: new Gauge({ name: 'accunode_model_psi', help: 'population stability index, recent predictions vs training data, per model kind, input (ratio or "pd") and tenant ("all" = every tenant)', labelNames: ['kind', 'input', 'tenant'], registers: r }),
    modelMissingShare: new Gauge({ name: 'accunode_model_missing_share', help: 'share of recent predictions with the ratio not reported', labelNames: ['kind', 'input', 'tenant'], registers: r }),
    modelDriftComputedAt: new Gauge({ name: 'accunode_model_drift_computed_timestamp_seconds', help: 'time of the latest model drift run', registers: r }),
    statsCollectedAt: new Gauge({ name: 'accunode_stats_collected_timestamp_seconds', help: 'when the database/Redis figures were last read', registers: r }),
    statsCollectErrors: new Counter({ name: 'accunode_stats_collect_errors_total', help: 'failed collections by source', labelNames: ['source'], registers: r }),
  };
}

/** The process-wide metrics (what the api, worker and scheduler increment). */
export const metrics: AppMetrics = createMetrics();

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

export interface StatsCollectorDeps {
  /** monitoring_user pool (a single connection is plenty). */
  sql?: Sql;
  redis?: Array<{ instance: string; client: Redis }>;
  replicas?: ReplicaConn[];
  slowQueryMs?: number;
  replicaLagLimitSeconds?: number;
  backupMaxAgeHours?: number;
  lastGoodBackup?: () => Promise<Date | null>;
  dbCpu?: () => Promise<number | null>;
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
