// Disaster recovery (issue 8, items 4-5): replica creation, health checks, failover with a
// split-brain guard, the automated watch, rejoin with pg_rewind, status.
//
// This is the self-hosted, single-operator tool the spec's runbook describes. A production
// cluster's automatic HA belongs to Patroni (or a managed service): see docs/backup-and-dr.md.
import { writeFileSync, appendFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import postgres from 'postgres';
import { createPool } from '../../db/pool.js';
import { publishPrimary, endpoint, type PrimaryChange } from '../../db/app-pools.js';
import { chownToPostgres, conninfo, ensurePostgresDir, libpqEnv, pgBin, pgCtl, postmasterPid, run, sleep } from './local.js';
import { postJson } from '../webhook.js';

/** dr_events without grants, for databases that are not migrated (drills, scratch clusters). */
export const DR_EVENTS_DDL = `create table if not exists dr_events (
  id bigserial primary key, kind varchar(32) not null, old_primary varchar(255), new_primary varchar(255),
  forced boolean not null default false, reason text, health_checks jsonb not null default '[]'::jsonb,
  started_at timestamp not null, promoted_at timestamp, writable_at timestamp, published boolean not null default false,
  notified boolean not null default false, notify_error text, details jsonb not null default '{}'::jsonb,
  created_at timestamp not null default current_timestamp)`;

export interface HealthCheck {
  at: string;
  ok: boolean;
  /** Reachable and not in recovery: it accepts writes. */
  writable: boolean;
  in_recovery: boolean | null;
  ms: number;
  error: string | null;
}

/** One health check: connect (bounded), ask pg_is_in_recovery(). */
export async function checkServer(url: string, timeoutMs = 2000): Promise<HealthCheck> {
  const t0 = Date.now();
  const at = new Date().toISOString();
  const sql = postgres(url, { max: 1, connect_timeout: Math.max(1, Math.ceil(timeoutMs / 1000)), idle_timeout: 1, onnotice: () => {}, connection: { application_name: 'accunode-dr-check' } });
  let t: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)));
    const [r] = (await Promise.race([sql`select pg_is_in_recovery() as r`, timeout])) as unknown as Array<{ r: boolean }>;
    return { at, ok: true, writable: !r!.r, in_recovery: r!.r, ms: Date.now() - t0, error: null };
  } catch (err) {
    return { at, ok: false, writable: false, in_recovery: null, ms: Date.now() - t0, error: (err as Error).message };
  } finally {
    clearTimeout(t);
    void sql.end({ timeout: 0 }).catch(() => {});
  }
}

async function notifyWebhook(url: string | undefined, payload: unknown, fetchImpl: typeof fetch = fetch): Promise<{ notified: boolean; error: string | null }> {
  if (!url) return { notified: false, error: 'ALARM_WEBHOOK_URL not set' };
  const r = await postJson(url, payload, fetchImpl);
  return { notified: r.ok, error: r.error ?? null };
}

export class SplitBrainRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SplitBrainRefused';
  }
}

interface FailoverOptions {
  /** Owner/superuser URL of the current primary (to check it). */
  primaryUrl?: string | undefined;
  /** Superuser (or pg_promote-granted) URL of the replica to promote. */
  replicaUrl: string;
  force?: boolean;
  /** Failed checks required (3). */
  checks?: number;
  checkIntervalMs?: number;
  checkTimeoutMs?: number;
  /** Checks already made (dr watch): the primary is not checked again. */
  precheckedFailures?: HealthCheck[];
  kind?: 'failover' | 'watch_failover' | 'drill';
  reason?: string;
  /** Publishes the new primary (AppPools follow it). */
  redis?: Redis | undefined;
  channel?: string;
  /** Or a direct callback (in-process drills). */
  onPublish?: (change: PrimaryChange) => void;
  webhookUrl?: string | undefined;
  fetch?: typeof fetch;
  waitWritableMs?: number;
  /**
   * With synchronous_standby_names set and no standby left, the promoted server would block every
   * commit. Default: clear it (availability first) and say so; keepSynchronous leaves it.
   */
  keepSynchronous?: boolean;
  log?: (msg: string) => void;
}

export interface FailoverResult {
  old_primary: string | null;
  new_primary: string;
  forced: boolean;
  health_checks: HealthCheck[];
  started_at: string;
  promoted_at: string;
  writable_at: string;
  promote_ms: number;
  total_ms: number;
  synchronous_cleared: boolean;
  event_id: number | null;
  recorded: boolean;
  published: boolean;
  notified: boolean;
  notify_error: string | null;
  notes: string[];
}

/**
 * The spec's failover procedure: the primary must fail `checks` consecutive health checks (or
 * --force); a primary that still accepts writes is never demoted by us (split brain) unless
 * forced; the replica is promoted, we wait until it commits a write, record the event, publish the
 * new primary and call the webhook.
 */
export async function failover(o: FailoverOptions): Promise<FailoverResult> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  const started_at = new Date().toISOString();
  const notes: string[] = [];
  const need = o.checks ?? 3;
  const checks: HealthCheck[] = [...(o.precheckedFailures ?? [])];
  if (!o.precheckedFailures && o.primaryUrl) {
    for (let i = 0; i < need; i++) {
      if (i > 0) await sleep(o.checkIntervalMs ?? 1000);
      const c = await checkServer(o.primaryUrl, o.checkTimeoutMs ?? 2000);
      checks.push(c);
      log(`primary check ${i + 1}/${need}: ${c.ok ? (c.writable ? 'up, accepts writes' : 'up, in recovery') : 'failed: ' + c.error}`);
      if (c.writable && !o.force) break;
    }
  } else if (!o.primaryUrl && !o.force) {
    throw new Error('no primary URL to check (--primary or DATABASE_ADMIN_URL); pass --force to promote without checking');
  }
  const alive = checks.find((c) => c.writable);
  if (alive && !o.force)
    throw new SplitBrainRefused(
      `refusing to promote: the primary ${o.primaryUrl ? endpoint(o.primaryUrl) : ''} still accepts writes (check at ${alive.at}). ` +
        'Promoting now would leave two primaries taking writes (split brain) whose histories cannot be merged. ' +
        'Stop or fence the old primary first, or pass --force if you know it is isolated from every client.',
    );
  if (alive && o.force) notes.push('forced while the old primary still accepted writes: fence it (stop it, block its port) before clients reach it');
  const failed = checks.filter((c) => !c.ok).length;
  if (!o.force && !alive && failed < need && !o.precheckedFailures) notes.push(`primary failed ${failed}/${need} checks`);

  const replica = createPool(o.replicaUrl, { max: 1, applicationName: 'accunode-dr', connectTimeoutSeconds: 5 });
  try {
    const [st] = await replica<Array<{ r: boolean }>>`select pg_is_in_recovery() as r`;
    const tp = Date.now();
    if (st!.r) {
      log(`promoting ${endpoint(o.replicaUrl)} (pg_promote)`);
      const [p] = await replica<Array<{ ok: boolean }>>`select pg_promote(true, 60) as ok`;
      if (!p!.ok) throw new Error('pg_promote did not complete within 60 s');
    } else notes.push('the replica was already out of recovery (promoted before); continuing with the remaining steps');
    const promoted_at = new Date().toISOString();
    const promote_ms = Date.now() - tp;
    let synchronous_cleared = false;
    const [sync] = await replica<Array<{ names: string; standbys: number }>>`
      select current_setting('synchronous_standby_names') as names,
             (select count(*)::int from pg_stat_replication where sync_state in ('sync', 'quorum')) as standbys`;
    if (sync!.names.trim() !== '' && sync!.standbys === 0 && !o.keepSynchronous) {
      await replica.unsafe(`alter system set synchronous_standby_names = ''`);
      await replica`select pg_reload_conf()`;
      synchronous_cleared = true;
      notes.push(`synchronous_standby_names was "${sync!.names}" with no standby attached: cleared so commits do not block; set it again once a replica follows (dr rejoin / dr replica create)`);
    }
    // Writable: a transaction that gets an xid and commits.
    const deadline = Date.now() + (o.waitWritableMs ?? 60_000);
    for (;;) {
      try {
        await replica`select txid_current()`;
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`promoted server did not accept a write within ${(o.waitWritableMs ?? 60_000) / 1000} s: ${(err as Error).message}`);
        await sleep(100);
      }
    }
    const writable_at = new Date().toISOString();
    log(`${endpoint(o.replicaUrl)} accepts writes`);
    const change: PrimaryChange = { from: o.primaryUrl ? endpoint(o.primaryUrl) : '', to: endpoint(o.replicaUrl), at: writable_at, event_id: null };
    // Record first (so the event id travels with the announcement), publish, notify, then update.
    let event_id: number | null = null;
    let recorded = false;
    try {
      const [e] = await replica<Array<{ id: number }>>`
        insert into dr_events (kind, old_primary, new_primary, forced, reason, health_checks, started_at, promoted_at, writable_at, details)
        values (${o.kind ?? 'failover'}, ${change.from || null}, ${change.to}, ${!!o.force}, ${o.reason ?? null}, ${replica.json(checks as never)},
                ${new Date(started_at)}, ${new Date(promoted_at)}, ${new Date(writable_at)}, ${replica.json({ notes, synchronous_cleared } as never)})
        returning id`;
      event_id = Number(e!.id);
      change.event_id = event_id;
      recorded = true;
    } catch (err) {
      notes.push(`event not recorded in dr_events: ${(err as Error).message}`);
    }
    let published = false;
    if (o.onPublish) {
      o.onPublish(change);
      published = true;
    }
    if (o.redis) {
      // The promoted server is a copy of the primary's database: it holds the same 'dr' key the
      // application processes read at start.
      let key: Buffer | null = null;
      try {
        const [k] = await replica<Array<{ secret: Buffer }>>`select secret from app_secrets where name = 'dr'`;
        key = k?.secret ?? null;
      } catch {
        key = null;
      }
      if (!key) notes.push("published unsigned: the promoted database holds no 'dr' key (migration 0042); application processes ignore unsigned changes");
      try {
        const receivers = await publishPrimary(o.redis, change, o.channel, key);
        published = true;
        log(`new primary published on ${o.channel ?? 'accunode:dr:primary'} (${receivers} subscribers)`);
      } catch (err) {
        notes.push(`publish failed: ${(err as Error).message}`);
      }
    }
    if (!published) notes.push('new primary not published (no Redis): restart processes or point DATABASE_URL at it');
    const payload = { event: 'database_failover', ...change, old_primary: change.from, new_primary: change.to, forced: !!o.force, health_checks: checks, notes };
    const n = await notifyWebhook(o.webhookUrl, payload, o.fetch);
    if (recorded)
      await replica`update dr_events set published = ${published}, notified = ${n.notified}, notify_error = ${n.error} where id = ${event_id}`.catch(() => {});
    return {
      old_primary: change.from || null,
      new_primary: change.to,
      forced: !!o.force,
      health_checks: checks,
      started_at,
      promoted_at,
      writable_at,
      promote_ms,
      total_ms: Date.now() - t0,
      synchronous_cleared,
      event_id,
      recorded,
      published,
      notified: n.notified,
      notify_error: n.error,
      notes,
    };
  } finally {
    await replica.end({ timeout: 2 });
  }
}

interface WatchOptions extends Omit<FailoverOptions, 'precheckedFailures' | 'kind' | 'force'> {
  primaryUrl: string;
  intervalMs?: number;
  failures?: number;
  maxUnavailableMs?: number;
  signal?: AbortSignal;
  onCheck?: (c: HealthCheck, consecutive: number) => void;
}

/**
 * `dr watch`: a health check every intervalMs; after `failures` consecutive failures (3) or
 * maxUnavailableMs (300 s) since the first of them, fails over once and returns. A successful
 * check resets the count. Returns null when stopped through the signal.
 */
export async function watch(o: WatchOptions): Promise<FailoverResult | null> {
  const need = o.failures ?? 3;
  const maxMs = o.maxUnavailableMs ?? 300_000;
  let run: HealthCheck[] = [];
  let firstFail = 0;
  while (!o.signal?.aborted) {
    const c = await checkServer(o.primaryUrl, o.checkTimeoutMs ?? 2000);
    if (c.writable) run = [];
    else {
      if (run.length === 0) firstFail = Date.now();
      run.push(c);
    }
    o.onCheck?.(c, run.length);
    if (run.length >= need || (run.length > 0 && Date.now() - firstFail >= maxMs)) {
      const reason = run.length >= need ? `${run.length} consecutive failed health checks` : `unavailable for ${Math.round((Date.now() - firstFail) / 1000)} s`;
      return failover({ ...o, kind: 'watch_failover', reason, precheckedFailures: run });
    }
    await sleep(o.intervalMs ?? 5000);
  }
  return null;
}

interface ReplicaCreateOptions {
  /** Superuser or REPLICATION role URL of the primary. */
  primaryUrl: string;
  port: number;
  dataDir: string;
  socketDir?: string;
  applicationName?: string;
  start?: boolean;
}

/** `dr replica create`: pg_basebackup -R -X stream into dataDir (as postgres), then start it on port. */
export async function createReplica(o: ReplicaCreateOptions): Promise<{ data_dir: string; port: number; ms: number; started: boolean }> {
  const t0 = Date.now();
  if (existsSync(o.dataDir) && postmasterPid(o.dataDir)) throw new Error(`${o.dataDir} belongs to a running server`);
  ensurePostgresDir(path.dirname(path.resolve(o.dataDir)), 0o755);
  await run(pgBin('pg_basebackup'), ['-D', o.dataDir, '-R', '-X', 'stream', '-c', 'fast', '--no-password', ...(o.applicationName ? [] : [])], {
    asPostgres: true,
    env: { ...libpqEnv(o.primaryUrl), ...(o.applicationName ? { PGAPPNAME: o.applicationName } : {}) },
  });
  const auto = path.join(o.dataDir, 'postgresql.auto.conf');
  appendFileSync(auto, `\n# accunode dr replica create\nport = ${o.port}\n${o.socketDir ? `unix_socket_directories = '${o.socketDir}'\n` : ''}${o.applicationName ? `cluster_name = '${o.applicationName}'\n` : ''}`);
  chownToPostgres(auto);
  if (o.start ?? true) await pgCtl('start', o.dataDir, { port: o.port, ...(o.socketDir ? { socketDir: o.socketDir } : {}) });
  return { data_dir: o.dataDir, port: o.port, ms: Date.now() - t0, started: o.start ?? true };
}

interface RejoinOptions {
  /** Data directory of the old primary (local). */
  dataDir: string;
  /** Superuser URL of the new primary (pg_rewind's source). */
  newPrimaryUrl: string;
  port?: number;
  socketDir?: string;
  start?: boolean;
  /** pg_rewind --restore-target-wal: fetch WAL the old primary already recycled through its restore_command (pgBackRest). */
  restoreTargetWal?: boolean;
}

/**
 * `dr rejoin`: stops the old primary if it still runs, rewinds it onto the new primary's timeline
 * (pg_rewind, which needs wal_log_hints = on or data checksums), writes standby.signal and
 * primary_conninfo (-R) so it can only come back as a replica, and starts it.
 */
export async function rejoin(o: RejoinOptions): Promise<{ ms: number; rewound: boolean; started: boolean; output: string }> {
  const t0 = Date.now();
  if (postmasterPid(o.dataDir)) await pgCtl('stop', o.dataDir, { mode: 'fast' }).catch(() => pgCtl('stop', o.dataDir, { mode: 'immediate' }));
  const r = await run(pgBin('pg_rewind'), ['--target-pgdata', o.dataDir, '--source-server', conninfo(o.newPrimaryUrl), '--write-recovery-conf', '--progress', ...(o.restoreTargetWal ? ['--restore-target-wal'] : [])], { asPostgres: true });
  // pg_rewind copies the source's auto.conf; keep this server's own port.
  if (o.port) {
    const auto = path.join(o.dataDir, 'postgresql.auto.conf');
    appendFileSync(auto, `\nport = ${o.port}\n`);
    chownToPostgres(auto);
  }
  if (o.start ?? true) await pgCtl('start', o.dataDir, { ...(o.port ? { port: o.port } : {}), ...(o.socketDir ? { socketDir: o.socketDir } : {}) });
  return { ms: Date.now() - t0, rewound: true, started: o.start ?? true, output: (r.stdout + r.stderr).trim().split('\n').slice(-3).join(' | ') };
}

interface DrStatus {
  primary: { endpoint: string; ok: boolean; writable: boolean; in_recovery: boolean | null; error: string | null; version: string | null } | null;
  standbys: Array<{ application_name: string; client: string | null; state: string; sync_state: string; replay_lag_seconds: number | null }>;
  synchronous_standby_names: string | null;
  replicas: Array<{ endpoint: string; ok: boolean; in_recovery: boolean | null; lag_seconds: number | null; error: string | null }>;
  last_event: Record<string, unknown> | null;
}

/** `dr status`: the primary, its standbys (pg_stat_replication), the configured read replicas and the last event. */
export async function drStatus(primaryUrl: string | undefined, replicaUrls: readonly string[]): Promise<DrStatus> {
  const out: DrStatus = { primary: null, standbys: [], synchronous_standby_names: null, replicas: [], last_event: null };
  if (primaryUrl) {
    const c = await checkServer(primaryUrl);
    out.primary = { endpoint: endpoint(primaryUrl), ok: c.ok, writable: c.writable, in_recovery: c.in_recovery, error: c.error, version: null };
    if (c.ok) {
      const sql = createPool(primaryUrl, { max: 1, applicationName: 'accunode-dr', connectTimeoutSeconds: 3 });
      try {
        const [v] = await sql<Array<{ v: string; s: string }>>`select current_setting('server_version') as v, current_setting('synchronous_standby_names') as s`;
        out.primary.version = v!.v;
        out.synchronous_standby_names = v!.s;
        out.standbys = await sql<DrStatus['standbys']>`
          select application_name, client_addr::text as client, state, sync_state, extract(epoch from replay_lag)::float8 as replay_lag_seconds from pg_stat_replication order by application_name`;
        const [e] = await sql<Array<Record<string, unknown>>>`select id, kind, old_primary, new_primary, forced, reason, writable_at, published, notified from dr_events order by id desc limit 1`.catch(() => []);
        out.last_event = e ?? null;
      } finally {
        await sql.end({ timeout: 2 });
      }
    }
  }
  for (const u of replicaUrls) {
    const c = await checkServer(u);
    let lag: number | null = null;
    if (c.ok) {
      const sql = createPool(u, { max: 1, applicationName: 'accunode-dr', connectTimeoutSeconds: 3 });
      try {
        const [r] = await sql<Array<{ lag: number }>>`select case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0 else coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()), 0) end::float8 as lag`;
        lag = r!.lag;
      } catch {
        /* keep null */
      } finally {
        await sql.end({ timeout: 2 });
      }
    }
    out.replicas.push({ endpoint: endpoint(u), ok: c.ok, in_recovery: c.in_recovery, lag_seconds: lag, error: c.error });
  }
  return out;
}

/** Writes a file owned by postgres (config files server programs read). */
export function writePostgresFile(file: string, content: string, mode = 0o600): void {
  writeFileSync(file, content, { mode });
  chownToPostgres(file);
}
