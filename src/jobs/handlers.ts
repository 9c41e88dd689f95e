/**
 * What each scheduled/background job does, behind a small interface so the worker does not
 * depend on how operations are implemented. `opsHandlers()` points them at the operations
 * services (src/ops); pieces that have not landed yet are clearly named placeholders that
 * report "not available" instead of pretending to have run.
 */
import { evaluateAlarms } from '../ops/alarms.js';
import type { OpsDeps } from '../ops/types.js';
import type { Redis } from 'ioredis';
import type { Sql } from '../db/pool.js';
import type { Logger } from '../logging.js';
import { runMaintenance, type MaintenanceDeps, type MaintenanceKind } from '../ops/maintenance.js';
import { runDailyBackup } from '../ops/backup-job.js';
import type { JobPayloads } from './catalogue.js';
import { runModelDriftJob } from './model-drift.js';

export interface ScheduledHandlers {
  /** Daily/weekly/monthly maintenance; the run is recorded in maintenance_runs by the ops service. */
  maintenance(kind: MaintenanceKind, opts: { dryRun: boolean }): Promise<unknown>;
  evaluateAlarms(): Promise<unknown>;
  backup(): Promise<unknown>;
  analyticsRefresh(payload: JobPayloads['analytics.refresh']): Promise<unknown>;
  /** Weekly model drift (src/jobs/model-drift.ts); optional so handler stubs need not name it. */
  modelDrift?(): Promise<unknown>;
}

export interface OpsHandlerDeps {
  adminSql: Sql;
  redis?: Redis;
  cacheRedis?: Redis;
  /** monitoring_user pool, when the process has one (else the owner's). */
  monitorSql?: Sql;
  config: MaintenanceDeps['config'] & Partial<OpsDeps['config']>;
  /** BULK_UPLOAD_DIR, for the daily sweep of orphaned upload files. */
  uploadDir?: string;
  log?: Logger;
}

/** Placeholder for a job whose service has not landed yet: records why it did nothing. */
export function notAvailable(what: string) {
  return async () => ({ outcome: 'skipped', reason: `${what} is not available in this build yet` });
}

export function opsHandlers(deps: OpsHandlerDeps): ScheduledHandlers {
  const mdeps: MaintenanceDeps = {
    adminSql: deps.adminSql,
    config: deps.config,
    ...(deps.redis ? { redis: deps.redis } : {}),
    ...(deps.cacheRedis ? { cacheRedis: deps.cacheRedis } : {}),
    ...(deps.log ? { log: deps.log } : {}),
    ...(deps.uploadDir ? { uploadDir: deps.uploadDir } : {}),
  };
  return {
    maintenance: (kind, opts) => runMaintenance(mdeps, kind, opts),
    evaluateAlarms: async () => {
      if (!deps.redis) return { outcome: 'skipped', reason: 'no Redis connection to evaluate the Redis alarms with' };
      // The owner reads the same statistics views as monitoring_user (pg_monitor) and writes the
      // alarm history; the worker has no separate monitoring connection.
      const r = await evaluateAlarms({
        sql: deps.monitorSql ?? deps.adminSql,
        adminSql: deps.adminSql,
        redis: deps.redis,
        ...(deps.cacheRedis && deps.cacheRedis !== deps.redis ? { cacheRedis: deps.cacheRedis } : {}),
        config: deps.config as OpsDeps['config'],
        ...(deps.log ? { log: deps.log } : {}),
      });
      return { outcome: r.firing.length > 0 ? 'alarm' : 'ok', firing: r.firing };
    },
    // Daily backup (issue 8): logical backup + verify + prune + Redis snapshot.
    backup: () => runDailyBackup({ adminSql: deps.adminSql, ...(deps.redis ? { redis: deps.redis } : {}), ...(deps.log ? { log: deps.log } : {}) }),
    analyticsRefresh: notAvailable('analytics aggregation'),
    modelDrift: () => runModelDriftJob({ adminSql: deps.adminSql, ...(deps.log ? { log: deps.log } : {}) }),
  };
}
