// Shared shapes of the operations services (monitor, diagnose, maintenance, alarms, metrics).
// Every service takes its dependencies explicitly (OpsDeps) and returns plain data the CLI,
// the scheduler's jobs and the tests render or assert on.
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Sql } from '../db/pool.js';
import type { Logger } from '../logging.js';

/** The configuration the operations services read (a subset of Config, easy to fake in tests). */
export type OpsConfig = Pick<
  Config,
  | 'ALARM_PERIOD_SECONDS'
  | 'ALARM_DB_CPU_PERCENT'
  | 'ALARM_DB_CPU_PERIODS'
  | 'ALARM_DB_CONNECTIONS_PERCENT'
  | 'ALARM_SLOW_QUERY_COUNT'
  | 'ALARM_SLOW_QUERY_MS'
  | 'ALARM_REDIS_CPU_PERCENT'
  | 'ALARM_REDIS_MEMORY_PERCENT'
  | 'ALARM_REDIS_EVICTIONS'
  | 'REPLICA_LAG_LIMIT_SECONDS'
  | 'BACKUP_MAX_AGE_HOURS'
  | 'DB_CPU_PROMETHEUS_URL'
  | 'DB_CPU_PROMETHEUS_QUERY'
  | 'MAINTENANCE_REINDEX_BLOAT_PERCENT'
  | 'MAINTENANCE_BATCH_SIZE'
  | 'OPS_BLOAT_SCAN_MAX_MB'
  | 'OPS_REDIS_SCAN_MAX_KEYS'
  | 'ALARM_WEBHOOK_URL'
>;

export const DEFAULT_OPS_CONFIG: OpsConfig = Object.freeze({
  ALARM_PERIOD_SECONDS: 300,
  ALARM_DB_CPU_PERCENT: 80,
  ALARM_DB_CPU_PERIODS: 2,
  ALARM_DB_CONNECTIONS_PERCENT: 80,
  ALARM_SLOW_QUERY_COUNT: 10,
  ALARM_SLOW_QUERY_MS: 1000,
  ALARM_REDIS_CPU_PERCENT: 75,
  ALARM_REDIS_MEMORY_PERCENT: 85,
  ALARM_REDIS_EVICTIONS: 100,
  REPLICA_LAG_LIMIT_SECONDS: 60,
  BACKUP_MAX_AGE_HOURS: 25,
  DB_CPU_PROMETHEUS_URL: undefined,
  DB_CPU_PROMETHEUS_QUERY: '100 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100',
  MAINTENANCE_REINDEX_BLOAT_PERCENT: 30,
  MAINTENANCE_BATCH_SIZE: 5000,
  OPS_BLOAT_SCAN_MAX_MB: 2048,
  OPS_REDIS_SCAN_MAX_KEYS: 100_000,
  ALARM_WEBHOOK_URL: undefined,
});

/** A read replica: a name for the tables and a connection to it. */
export interface ReplicaConn {
  name: string;
  sql: Sql;
}

/** Where the last good backup comes from (the backups feature provides one). */
export interface BackupSource {
  /** null = no backup has succeeded yet; 'unconfigured' = backups are not set up here. */
  lastGoodBackup(): Promise<{ at: Date; id: string } | null | 'unconfigured'>;
}

/** Database host CPU, percent of all its cores, over the period since the previous reading. */
export interface CpuSource {
  /**
   * previous: the snapshot this source returned last time (kept by the caller, e.g. in
   * ops_snapshots between two runs of the alarms job), or null.
   */
  sample(previous: unknown): Promise<{ result: Measured<number>; snapshot?: unknown }>;
}

export interface OpsDeps {
  /** monitoring_user (pg_monitor): statistics views and the operations history tables. */
  sql: Sql;
  /** The owner: maintenance (VACUUM needs the table owner), cancelling/terminating backends. */
  adminSql?: Sql;
  /** REDIS_URL: sessions, rate limits, queues. */
  redis: Redis;
  /** CACHE_REDIS_URL when it is a separate instance. */
  cacheRedis?: Redis;
  replicas?: ReplicaConn[];
  config: OpsConfig;
  log?: Logger;
  /** Injected clock (tests move time instead of waiting five minutes). */
  now?: () => Date;
  /** Database host CPU; default: /proc when the database is local, else a Prometheus query, else unavailable. */
  dbCpu?: CpuSource;
  backups?: BackupSource;
  /** fetch used for the alarm webhook (tests may pass their own). */
  fetch?: typeof fetch;
}

/** A figure that was measured, or why it could not be. Never an invented number. */
export type Measured<T> = { value: T; source: string } | { value: null; unavailable: string; source?: string };

export function measured<T>(value: T, source: string): Measured<T> {
  return { value, source };
}
export function unavailable<T = never>(reason: string, source?: string): Measured<T> {
  return source ? { value: null, unavailable: reason, source } : { value: null, unavailable: reason };
}

export type Level = 'OK' | 'WARN' | 'ALARM' | '-';

/** A figure of `monitor` compared with its threshold. */
export interface MonitorFigure {
  group: 'postgres' | 'redis';
  name: string;
  value: number | string | null;
  unit: string;
  status: Level | 'UNAVAILABLE';
  threshold: string;
  /** Where the number comes from, or why it is unavailable. */
  note: string;
}

export function nowOf(deps: Pick<OpsDeps, 'now'>): Date {
  return deps.now ? deps.now() : new Date();
}

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
