/**
 * Operations for the web app's Operations page: the same figures as `accunode monitor`,
 * `alarms`, `maintenance history` and backups, read through the operations services.
 *
 *   GET /ops/overview     tenant_admin+   database and Redis health (up, latency); for super admins
 *                                         also the platform-wide alarm states, recent maintenance
 *                                         runs (outcome only), backup status and replica count
 *                                         (null for tenant admins: they are not any tenant's)
 *   GET /ops/monitor      super_admin     the full monitor report (cluster-wide: connections of
 *                                         every database, running queries, largest tables, lag)
 *   GET /ops/alarms       super_admin     alarm states with values and reasons, and transitions
 *   GET /ops/maintenance  super_admin     maintenance runs with their steps
 *   GET /ops/backups      super_admin     backups (or "not configured") and replicas
 *
 * Figures are read as monitoring_user (pg_monitor), never as app_user; when that connection is
 * not available the cluster-wide routes answer 503 saying so.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import { Type } from 'typebox';
import type { Sql } from '../../../db/pool.js';
import { DomainError } from '../../../domain/errors.js';
import { collectMonitor } from '../../../ops/monitoring/monitor.js';
import { ALARMS } from '../../../ops/monitoring/alarms/definitions.js';
import { alarmHistory, alarmStates } from '../../../repositories/monitoring.js';
import { maintenanceHistory } from '../../../ops/maintenance.js';
import { pingPostgres, replicationLag } from '../../../ops/monitoring/pg.js';
import { pingMs } from '../../../ops/monitoring/redis.js';
import { errMessage, type BackupSource, type OpsDeps } from '../../../ops/types.js';
import { principal, requireRole } from '../../plugins/auth.js';
import { metrics } from '../../../ops/monitoring/metrics.js';
import { latestModelDrift } from '../../../services/model-drift.js';
import { ApiSampler, opsHistory, type QueueReader } from '../../../ops/monitoring/timeseries.js';
import { errorResponses } from '../../schemas.js';

/** A backup as `accunode backup list --json` prints it (the backups module provides the list). */
export interface BackupListItem {
  id: string;
  tag?: string | null;
  created_at: string | Date;
  size?: number | null;
  [k: string]: unknown;
}

export interface OpsRoutesDeps {
  /** app_user pool: the database liveness check the api itself depends on. */
  sql: Sql;
  redis: Redis;
  cacheRedis?: Redis;
  /** The operations services' dependencies on the monitoring_user connection; null when it cannot log in. */
  monitor: OpsDeps | null;
  /** How many read replicas DATABASE_READ_URLS configures. */
  readReplicas: number;
  /** Last good backup (manifests in BACKUP_DIR); absent = backups not configured. */
  backupSource?: BackupSource;
  /** The backups module's list, once it exists; absent = "not configured". */
  listBackups?: () => Promise<BackupListItem[]>;
  /** The queues' job counts and workers (the api's producers); absent: not shown. */
  queues?: QueueReader;
  /** How often the api samples its own figures for the 24-hour charts (default 5 min; 0: never). */
  sampleIntervalMs?: number;
}

const Any = Type.Object({}, { additionalProperties: true });
const jsonSafe = <T>(v: T): T => JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x))) as T;

async function timed<T>(fn: () => Promise<T>): Promise<{ ok: true; ms: number; value: T } | { ok: false; error: string }> {
  const t0 = performance.now();
  try {
    const value = await Promise.race([fn(), new Promise<never>((_r, rej) => setTimeout(() => rej(new Error('timed out after 2 s')), 2000).unref())]);
    return { ok: true, ms: Math.round((performance.now() - t0) * 100) / 100, value };
  } catch (err) {
    return { ok: false, error: errMessage(err) };
  }
}

export const opsRoutes: FastifyPluginAsyncTypebox<{ deps: OpsRoutesDeps }> = async (app, { deps }) => {
  const config = { rateLimitClass: 'admin' as const };
  const monitorDeps = (): OpsDeps => {
    if (!deps.monitor) throw new DomainError('unavailable', 'operations figures need the monitoring connection (monitoring_user cannot log in: set DATABASE_MONITOR_URL or MONITORING_USER_PASSWORD)');
    return deps.monitor;
  };

  async function backupStatus() {
    if (deps.listBackups) {
      const list = await deps.listBackups();
      const last = list.map((b) => new Date(b.created_at)).sort((a, b) => b.getTime() - a.getTime())[0];
      return { configured: true, count: list.length, last_good_at: last ? last.toISOString() : null, note: list.length ? 'from the backups module' : 'no backup yet' };
    }
    const r = deps.backupSource ? await deps.backupSource.lastGoodBackup() : 'unconfigured';
    if (r === 'unconfigured') return { configured: false, count: 0, last_good_at: null, note: 'not configured' };
    return { configured: true, count: null, last_good_at: r ? r.at.toISOString() : null, note: r ? `last good backup ${r.id}` : 'no good backup yet' };
  }

  app.get('/ops/overview', {
    preHandler: requireRole('tenant_admin'),
    schema: {
      tags: ['ops'],
      summary: 'Platform health: database and Redis (tenant admins and above); alarm states, recent maintenance, backups and replicas for super admins only (null otherwise)',
      response: {
        200: Type.Object({
          taken_at: Type.String(),
          database: Any,
          redis: Type.Array(Any),
          alarms: Type.Union([Type.Array(Any), Type.Null()]),
          maintenance: Type.Union([Type.Array(Any), Type.Null()]),
          backups: Type.Union([Any, Type.Null()]),
          replicas: Type.Union([Any, Type.Null()]),
          notes: Type.Array(Type.String()),
        }),
        ...errorResponses,
      },
    },
    config,
  }, async (req) => {
    const notes: string[] = [];
    // Alarms, maintenance, backups and replicas describe the whole platform (every tenant's
    // load, the operators' schedule): a tenant's admin sees whether the service is up, no more.
    const platform = principal(req).role === 'super_admin';
    const db = await timed(() => pingPostgres(deps.sql));
    const redisTargets: Array<[string, Redis]> = [['redis', deps.redis]];
    if (deps.cacheRedis && deps.cacheRedis !== deps.redis) redisTargets.push(['cache redis', deps.cacheRedis]);
    const redis = [];
    for (const [name, client] of redisTargets) {
      const r = await timed(() => pingMs(client));
      redis.push(r.ok ? { name, status: 'up', latency_ms: Math.round(r.value * 100) / 100 } : { name, status: 'down', error: r.error });
    }
    let alarms = null;
    let maintenance = null;
    if (!platform) notes.push('alarms, maintenance, backups and replicas are platform-wide figures, shown to super admins');
    else if (deps.monitor) {
      const m = deps.monitor;
      try {
        const states = await alarmStates(m.sql);
        const byName = new Map(states.map((s) => [s.name, s]));
        alarms = ALARMS.map((a) => {
          const s = byName.get(a.name);
          return { name: a.name, description: a.description, state: s?.state ?? 'INSUFFICIENT_DATA', since: s ? new Date(s.since).toISOString() : null };
        });
      } catch (err) {
        notes.push(`alarms unavailable: ${errMessage(err)}`);
      }
      try {
        maintenance = (await maintenanceHistory(m.sql, { limit: 10 })).map((r) => ({
          id: r.id, kind: r.kind, dry_run: r.dry_run, started_at: new Date(r.started_at).toISOString(), duration_s: r.duration_s, outcome: r.outcome, rows_affected: r.rows_affected,
        }));
      } catch (err) {
        notes.push(`maintenance history unavailable: ${errMessage(err)}`);
      }
    } else notes.push('alarms and maintenance need the monitoring connection (monitoring_user), which is not available');
    return {
      taken_at: new Date().toISOString(),
      database: db.ok ? { status: 'up', latency_ms: db.ms } : { status: 'down', error: db.error },
      redis,
      alarms,
      maintenance,
      backups: platform ? await backupStatus() : null,
      replicas: platform ? { configured: deps.readReplicas } : null,
      notes,
    };
  });

  // The api's request, error, latency, cache and queue figures join metric_samples every interval.
  if (deps.monitor && deps.sampleIntervalMs !== 0) {
    const sampler = new ApiSampler({ sql: deps.monitor.sql, metrics, ...(deps.queues ? { queues: deps.queues } : {}), ...(deps.monitor.log ? { log: deps.monitor.log } : {}), ...(deps.sampleIntervalMs ? { intervalMs: deps.sampleIntervalMs } : {}) }).start();
    app.addHook('onClose', async () => sampler.stop());
  }

  app.get('/ops/history', {
    preHandler: requireRole('super_admin'),
    schema: {
      tags: ['ops'],
      summary: 'The sampled figures and alarm transitions of the last hours, oldest first (super admin)',
      querystring: Type.Object({ hours: Type.Optional(Type.Integer({ minimum: 1, maximum: 168, default: 24 })) }, { additionalProperties: false }),
      response: { 200: Any, ...errorResponses },
    },
    config,
  }, async (req) => jsonSafe(await opsHistory(monitorDeps().sql, req.query.hours ?? 24)));

  app.get('/ops/queues', {
    preHandler: requireRole('super_admin'),
    schema: { tags: ['ops'], summary: 'Jobs per queue and state, and the workers connected to each queue (super admin)', response: { 200: Any, ...errorResponses } },
    config,
  }, async () => {
    // A process without queue producers says so in the answer (the page shows the note).
    if (!deps.queues) return { taken_at: new Date().toISOString(), queues: null, note: 'queue figures are not available in this process' };
    return { taken_at: new Date().toISOString(), queues: await deps.queues() };
  });

  app.get('/ops/monitor', {
    preHandler: requireRole('super_admin'),
    schema: { tags: ['ops'], summary: 'The monitor report (as `accunode monitor --json`; super admin)', response: { 200: Any, ...errorResponses } },
    config,
  }, async () => jsonSafe(await collectMonitor(monitorDeps(), { sampleMs: 250 })));

  app.get('/ops/alarms', {
    preHandler: requireRole('super_admin'),
    schema: {
      tags: ['ops'],
      summary: 'Alarm states and recent transitions (super admin)',
      querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })) }, { additionalProperties: false }),
      response: { 200: Type.Object({ states: Type.Array(Any), history: Type.Array(Any) }), ...errorResponses },
    },
    config,
  }, async (req) => {
    const m = monitorDeps();
    const states = await alarmStates(m.sql);
    const defs = new Map(ALARMS.map((a) => [a.name, a]));
    return jsonSafe({
      states: states.map((s) => ({ ...s, description: defs.get(s.name)?.description ?? null, threshold: defs.get(s.name)?.threshold(m.config) ?? null })),
      history: await alarmHistory(m.sql, { limit: req.query.limit ?? 50 }),
    });
  });

  app.get('/ops/model-drift', {
    preHandler: requireRole('super_admin'),
    schema: {
      tags: ['ops'],
      summary: 'The latest model drift run: PSI of each ratio and of the PD per model kind, overall and per tenant (super admin)',
      response: { 200: Type.Object({ taken_at: Type.Union([Type.String(), Type.Null()]), run: Type.Union([Any, Type.Null()]) }), ...errorResponses },
    },
    config,
  }, async () => {
    const d = await latestModelDrift(monitorDeps().sql);
    return { taken_at: d ? d.taken_at.toISOString() : null, run: d ? jsonSafe(d.run) : null };
  });

  app.get('/ops/maintenance', {
    preHandler: requireRole('super_admin'),
    schema: {
      tags: ['ops'],
      summary: 'Recent maintenance runs with their steps (super admin)',
      querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })) }, { additionalProperties: false }),
      response: { 200: Type.Array(Any), ...errorResponses },
    },
    config,
  }, async (req) => jsonSafe(await maintenanceHistory(monitorDeps().sql, { limit: req.query.limit ?? 20 })));

  app.get('/ops/backups', {
    preHandler: requireRole('super_admin'),
    schema: {
      tags: ['ops'],
      summary: 'Backups (or "not configured") and replicas with their lag (super admin)',
      response: { 200: Type.Object({ backups: Any, items: Type.Array(Any), replicas: Type.Array(Any) }), ...errorResponses },
    },
    config,
  }, async () => {
    const m = monitorDeps();
    const items = deps.listBackups ? await deps.listBackups() : [];
    return jsonSafe({ backups: await backupStatus(), items, replicas: await replicationLag(m.sql, m.replicas ?? []) });
  });
};
