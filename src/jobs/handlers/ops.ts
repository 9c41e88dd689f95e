// The operations jobs: maintenance, alarms, the daily backup. Each is a one-liner into src/ops
// with the OpsDeps the composition root built, the same the CLI commands use.
import { UnrecoverableError } from 'bullmq';
import { evaluateAlarms } from '../../ops/monitoring/alarms/evaluate.js';
import { runDailyBackup } from '../../ops/backup/job.js';
import { runMaintenance, type MaintenanceKind } from '../../ops/maintenance.js';
import { runModelDriftJob } from '../model-drift.js';
import { MissingJobDeps, type JobDeps, type JobHandler, type OpsJobDeps } from '../context.js';

function opsOf(deps: JobDeps, job: string): OpsJobDeps {
  if (!deps.ops) throw new UnrecoverableError(new MissingJobDeps(job).message);
  return deps.ops;
}

export function maintenanceOf(kind: MaintenanceKind): JobHandler<'maintenance.daily' | 'maintenance.weekly' | 'maintenance.monthly'> {
  return (deps, { job }) => {
    const o = opsOf(deps, job.name);
    return runMaintenance(
      {
        adminSql: o.ops.adminSql,
        redis: o.ops.redis,
        ...(o.ops.cacheRedis ? { cacheRedis: o.ops.cacheRedis } : {}),
        config: o.config,
        log: deps.log,
        uploadDir: o.uploadDir,
      },
      kind,
      { dryRun: !!job.data.dryRun },
    );
  };
}

export const evaluateAlarmsJob: JobHandler<'alarms.evaluate'> = async (deps, { job }) => {
  const r = await evaluateAlarms(opsOf(deps, job.name).ops);
  return { outcome: r.firing.length > 0 ? 'alarm' : 'ok', firing: r.firing, states: Object.fromEntries(r.alarms.map((a) => [a.name, a.state])) };
};

export const dailyBackup: JobHandler<'backup.daily'> = (deps, { job }) => {
  const o = opsOf(deps, job.name);
  return runDailyBackup({ adminSql: o.ops.adminSql, redis: o.ops.redis, log: deps.log, config: o.config });
};

export const modelDriftJob: JobHandler<'model.drift'> = (deps, { job }) =>
  runModelDriftJob({ adminSql: opsOf(deps, job.name).ops.adminSql, engine: deps.engine, log: deps.log });
