// The spec's CloudWatch alarms, self-hosted: what each alarm is, and the shapes an evaluation
// produces. Measuring is readings.ts, deciding a state is decide.ts, the whole evaluation (with
// its storage and webhook) is evaluate.ts.
import type { AlarmState, MetricSample } from '../../../repositories/monitoring.js';
import { PSI_SIGNIFICANT } from '../../../risk/drift.js';
import type { OpsConfig } from '../../types.js';

export type { AlarmState };

export interface AlarmDef {
  name: string;
  description: string;
  unit: string;
  /** Consecutive closed periods over the threshold before it fires. */
  periods: (c: OpsConfig) => number;
  /** The Prometheus rule expression of ops/prometheus/alerts.yml says the same. */
  threshold: (c: OpsConfig) => string;
}

/** The alarm list: the same names as ops/prometheus/alerts.yml (a test holds them equal). */
export const ALARMS: readonly AlarmDef[] = [
  { name: 'AccuNode-DB-HighCPU', description: 'database CPU utilization is high', unit: '%', periods: (c) => c.ALARM_DB_CPU_PERIODS, threshold: (c) => `> ${c.ALARM_DB_CPU_PERCENT} % for ${c.ALARM_DB_CPU_PERIODS} periods` },
  { name: 'AccuNode-DB-HighConnections', description: 'database connections near max_connections', unit: 'connections', periods: () => 1, threshold: (c) => `> ${c.ALARM_DB_CONNECTIONS_PERCENT} % of max_connections` },
  { name: 'AccuNode-DB-SlowQueries', description: 'slow statements in the period', unit: 'calls', periods: () => 1, threshold: (c) => `> ${c.ALARM_SLOW_QUERY_COUNT} calls averaging > ${c.ALARM_SLOW_QUERY_MS} ms` },
  { name: 'AccuNode-Redis-HighCPU', description: 'Redis CPU utilization is high', unit: '%', periods: () => 1, threshold: (c) => `> ${c.ALARM_REDIS_CPU_PERCENT} % of a core` },
  { name: 'AccuNode-Redis-HighMemory', description: 'Redis memory usage is high', unit: '%', periods: () => 1, threshold: (c) => `> ${c.ALARM_REDIS_MEMORY_PERCENT} %` },
  { name: 'AccuNode-Redis-HighEvictions', description: 'Redis evicts keys', unit: 'keys', periods: () => 1, threshold: (c) => `> ${c.ALARM_REDIS_EVICTIONS} per period` },
  { name: 'AccuNode-DB-ReplicaLag', description: 'a read replica lags behind the primary', unit: 's', periods: () => 1, threshold: (c) => `> ${c.REPLICA_LAG_LIMIT_SECONDS} s` },
  { name: 'AccuNode-Backup-Stale', description: 'the last good backup is older than its schedule', unit: 'h', periods: () => 1, threshold: (c) => `> ${c.BACKUP_MAX_AGE_HOURS} h` },
  { name: 'AccuNode-Model-Drift', description: 'recent predictions have shifted from a model\'s training data (PSI, all tenants)', unit: 'PSI', periods: () => 1, threshold: () => `> ${PSI_SIGNIFICANT}` },
];
export const ALARM_NAMES: readonly string[] = ALARMS.map((a) => a.name);

/** One alarm's figure for this evaluation. */
export interface Reading {
  value: number | null;
  /** null: the figure could not be measured (INSUFFICIENT_DATA). */
  breach: boolean | null;
  /** Shown with the figure: how it was measured, or why it is unavailable. */
  reason: string;
  threshold: number | null;
  /** Reading over a period (needs a closed period to count towards consecutive breaches). */
  periodic: boolean;
}

export interface AlarmResult {
  name: string;
  state: AlarmState;
  previous_state: AlarmState | null;
  value: number | null;
  threshold: number | null;
  unit: string;
  condition: string;
  breaches: number;
  reason: string;
  transition: boolean;
}

export interface AlarmEvaluation {
  evaluated_at: Date;
  /** Seconds since the counter snapshot the deltas are taken against (null: first evaluation). */
  period_s: number | null;
  period_closed: boolean;
  alarms: AlarmResult[];
  firing: string[];
  notifications: Array<{ alarm: string; to: AlarmState; ok: boolean; error?: string }>;
  samples: MetricSample[];
}
