// Prometheus metrics (prom-client): one registry per process; the counters and histograms other
// modules increment are fields of AppMetrics. Its own module, importing nothing of the app, so
// any layer (cache, services, http, ops) can count without importing the operations code:
//
//   import { metrics } from '../metrics.js';
//   metrics.rateLimitRejections.inc({ policy: 'predictions' });
//   metrics.cacheHits.inc({ family: 'company' }); metrics.cacheMisses.inc({ family: 'company' });
//   metrics.queueDepth.set({ queue: 'bulk', state: 'waiting' }, 12);
//   const end = metrics.jobDuration.startTimer({ queue: 'bulk', job: 'predict' }); ...; end({ outcome: 'completed' });
//   metrics.modelInference.observe({ model: 'annual' }, seconds);
//
// The database and Redis figures are set by the StatsCollector in src/ops/monitoring/metrics.ts.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
  /** Model drift (issue 15), from the latest stored run: src/ops/monitoring/model-drift-metrics.ts. */
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
    statsCollectedAt: new Gauge({ name: 'accunode_stats_collected_timestamp_seconds', help: 'when the database/Redis figures were last read', registers: r }),
    statsCollectErrors: new Counter({ name: 'accunode_stats_collect_errors_total', help: 'failed collections by source', labelNames: ['source'], registers: r }),
    modelPsi: new Gauge({ name: 'accunode_model_psi', help: 'population stability index, recent predictions vs training data, per model kind, input (ratio or "pd") and tenant ("all" = every tenant)', labelNames: ['kind', 'input', 'tenant'], registers: r }),
    modelMissingShare: new Gauge({ name: 'accunode_model_missing_share', help: 'share of recent predictions with the ratio not reported', labelNames: ['kind', 'input', 'tenant'], registers: r }),
    modelDriftComputedAt: new Gauge({ name: 'accunode_model_drift_computed_timestamp_seconds', help: 'time of the latest model drift run', registers: r }),
  };
}

/** The process-wide metrics (what the api, worker and scheduler increment). */
export const metrics: AppMetrics = createMetrics();
