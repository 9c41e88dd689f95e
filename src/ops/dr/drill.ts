// `accunode dr drill` (issue 8, item 6): a fixed-rate write load against a throwaway local
// primary with a streaming replica; the primary is killed (SIGKILL of the postmaster), the
// failover procedure runs, and the drill reports RTO (kill → first successful write through the
// same, never restarted, application pool) and RPO (acknowledged writes missing afterwards), for
// asynchronous or synchronous (synchronous_standby_names) replication. Optionally it also times
// a restore from the latest logical backup and a PITR restore (pgBackRest) of the same cluster.
import { mkdtempSync, appendFileSync, chmodSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../redis/topology.js';
import { createPool } from '../../db/pool.js';
import { AppPools } from '../../db/app-pools.js';
import { ReplicaRouter } from '../../db/replicas.js';
import { createBackup, restoreBackup } from '../backup/backup.js';
import { failover, rejoin, createReplica, DR_EVENTS_DDL, type FailoverResult } from './dr.js';
import { chownToPostgres, ensurePostgresDir, freePort, pgBin, pgCtl, postmasterPid, run, sleep } from './local.js';
import { pitrBase, pitrRestore, pitrSetup, type PitrSettings } from '../backup/pitr.js';

export interface LocalCluster {
  port: number;
  dataDir: string;
  root: string;
  url(db?: string): string;
  start(): Promise<void>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** SIGKILL the postmaster (a crash, not a shutdown). */
  kill(): void;
}

function clusterHandle(root: string, dataDir: string, port: number): LocalCluster {
  const sock = path.join(root, 'sock');
  return {
    port,
    dataDir,
    root,
    url: (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}`,
    start: () => pgCtl('start', dataDir, { port, socketDir: sock, logFile: path.join(root, `pg-${port}.log`) }),
    stop: (mode = 'fast') => pgCtl('stop', dataDir, { mode }).catch(() => {}),
    kill() {
      // The postmaster and every backend it forked, like a host that dies: a backend left alive
      // could still acknowledge a commit it had in hand.
      const pid = postmasterPid(dataDir);
      if (!pid) return;
      const children = readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            return Number(readFileSync(`/proc/${d}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]) === pid;
          } catch {
            return false;
          }
        })
        .map(Number);
      process.kill(pid, 'SIGKILL');
      for (const c of children) {
        try {
          process.kill(c, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    },
  };
}

/** A private cluster (initdb as postgres, trust on 127.0.0.1) in a new temp dir, started. */
export async function startLocalCluster(conf = '', root?: string): Promise<LocalCluster> {
  const dir = root ?? mkdtempSync(path.join(os.tmpdir(), 'accunode-dr-'));
  chmodSync(dir, 0o755);
  ensurePostgresDir(dir, 0o755);
  ensurePostgresDir(path.join(dir, 'sock'), 0o755);
  const port = await freePort();
  const dataDir = path.join(dir, `pg-${port}`);
  await run(pgBin('initdb'), ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions'], { asPostgres: true });
  const file = path.join(dataDir, 'postgresql.conf');
  appendFileSync(file, `\nlisten_addresses = '127.0.0.1'\nwal_level = replica\nmax_wal_senders = 10\nwal_log_hints = on\nwal_keep_size = '256MB'\nfsync = off\nshared_buffers = 32MB\n${conf}\n`);
  chownToPostgres(file);
  const c = clusterHandle(dir, dataDir, port);
  await c.start();
  return c;
}

/** A streaming replica of `primary` (pg_basebackup -R), started. */
export async function startLocalReplica(primary: LocalCluster, name = 'replica1', conf = ''): Promise<LocalCluster> {
  const port = await freePort();
  const dataDir = path.join(primary.root, `pg-${port}`);
  await createReplica({ primaryUrl: primary.url(), port, dataDir, socketDir: path.join(primary.root, 'sock'), applicationName: name, start: false });
  if (conf) {
    appendFileSync(path.join(dataDir, 'postgresql.auto.conf'), `\n${conf}\n`);
    chownToPostgres(path.join(dataDir, 'postgresql.auto.conf'));
  }
  const c = clusterHandle(primary.root, dataDir, port);
  await c.start();
  return c;
}

interface DrillOptions {
  mode: 'async' | 'sync';
  /** Writes per second (200). */
  rate?: number;
  /** Load before the kill (ms). */
  warmupMs?: number;
  /** Load after writes resumed (ms). */
  afterMs?: number;
  /** Failover health-check interval (ms) and count. */
  checkIntervalMs?: number;
  checks?: number;
  /** Redis for the primary-change publication; without it the drill switches in-process. */
  redisUrl?: string | undefined;
  /** Time a logical restore and a PITR restore too. */
  withRestores?: boolean;
  /** Rejoin the old primary as a replica of the new one (pg_rewind) at the end. */
  withRejoin?: boolean;
  log?: (msg: string) => void;
}

export interface DrillReport {
  mode: 'async' | 'sync';
  rate_per_second: number;
  writes_attempted: number;
  writes_acknowledged: number;
  writes_failed: number;
  writes_after_failover: number;
  rto_ms: number | null;
  kill_to_writable_ms: number;
  failover: Pick<FailoverResult, 'promote_ms' | 'total_ms' | 'synchronous_cleared' | 'published' | 'recorded' | 'notes'>;
  rpo_writes_lost: number;
  rpo_seconds: number;
  reads_during_outage: { ok: number; failed: number; from_replica: number };
  pool_switched_without_restart: boolean;
  restore_logical_ms: number | null;
  restore_pitr_ms: number | null;
  rejoin_ms: number | null;
  rejoined_as_replica: boolean | null;
  check_interval_ms: number;
  checks: number;
}

export async function runDrill(o: DrillOptions): Promise<DrillReport> {
  const log = o.log ?? (() => {});
  const rate = o.rate ?? 200;
  const checkIntervalMs = o.checkIntervalMs ?? 1000;
  const checks = o.checks ?? 3;
  // Synchronous: turned on once the standby streams (a commit would wait forever before); the
  // replica carries the same setting, as a shared configuration would give it, so the failover's
  // "no standby left: clear it" step is exercised.
  const syncConf = o.mode === 'sync' ? `synchronous_standby_names = '*'\nsynchronous_commit = on\n` : '';
  const archiveConf = o.withRestores ? `archive_mode = on\narchive_command = '/bin/true'\n` : '';
  log(`starting a local primary and replica (${o.mode} replication)`);
  const primary = await startLocalCluster(archiveConf);
  const closers: Array<() => Promise<unknown>> = [];
  let replica: LocalCluster | null = null;
  try {
    const admin = createPool(primary.url(), { max: 1 });
    await admin.unsafe(`create table drill_writes (id bigint primary key, written_at timestamptz not null default clock_timestamp()); ${DR_EVENTS_DDL}`);
    await admin.end();
    replica = await startLocalReplica(primary, 'replica1', syncConf);
    const r = replica;
    const waitSql = createPool(primary.url(), { max: 1 });
    if (o.mode === 'sync') {
      await waitSql.unsafe(`alter system set synchronous_standby_names = '*'`);
      await waitSql`select pg_reload_conf()`;
    }
    for (let i = 0; ; i++) {
      const [s] = await waitSql<Array<{ n: number }>>`select count(*)::int as n from pg_stat_replication where state = 'streaming' and (${o.mode} = 'async' or sync_state = 'sync')`;
      if (s!.n > 0) break;
      if (i > 200) throw new Error('replica did not start streaming');
      await sleep(50);
    }
    await waitSql.end();

    // Restore material taken before the incident: a logical backup and a PITR base backup.
    let backupDir: string | null = null;
    let pitr: PitrSettings | null = null;
    let backupId: string | null = null;
    if (o.withRestores) {
      backupDir = path.join(primary.root, 'backups');
      ensurePostgresDir(backupDir, 0o755);
      const pre = createPool(primary.url(), { max: 1 });
      await pre`insert into drill_writes (id) select -g from generate_series(1, 20000) g`;
      await pre.end();
      backupId = (await createBackup({ adminUrl: primary.url(), dir: backupDir, retentionDays: 30, jobs: 2, encryptionKey: 'drill-key' })).id;
      pitr = { dir: backupDir, stanza: 'drill', pgDataDir: primary.dataDir, pgPort: primary.port, pgSocketDir: path.join(primary.root, 'sock'), cipherPass: 'drill-pitr-key', adminUrl: primary.url() };
      await pitrSetup(pitr);
      await pitrBase(pitr, { type: 'full', repos: [1] });
    }

    let redis: Redis | null = null;
    let subscriber: Redis | null = null;
    const channel = `accunode:drill:${process.pid}:${primary.port}`;
    const pools = new AppPools(primary.url(), (u) => createPool(u, { max: 8, applicationName: 'accunode-drill', connectTimeoutSeconds: 2 }));
    closers.push(() => pools.end({ timeout: 1 }));
    if (o.redisUrl) {
      // Through the one Redis factory, so a Sentinel/Cluster/TLS setting applies to the drill too.
      redis = connectRedis(o.redisUrl, { maxRetriesPerRequest: 2 });
      subscriber = connectRedis(o.redisUrl, { maxRetriesPerRequest: 2 });
      const stop = await pools.follow(subscriber, redis, channel);
      closers.push(async () => {
        await stop();
        subscriber!.disconnect();
        await redis!.del(`${channel}:history`).catch(() => {});
        redis!.disconnect();
      });
    }
    const router = new ReplicaRouter({ urls: [r.url()], lagLimitSeconds: 30, intervalMs: 500, poolSize: 2 }).start();
    closers.push(() => router.close());
    await router.check();

    // Load.
    const acked: number[] = [];
    let attempted = 0;
    let failed = 0;
    let inflight = 0;
    let killAt = 0;
    let firstAfterKill = 0;
    let afterFailover = 0;
    const reads = { ok: 0, failed: 0, from_replica: 0 };
    const oldEndpoint = pools.endpoint;
    const perServer = new Map<string, number>();
    let running = true;
    const interval = 1000 / rate;
    const t0 = Date.now();
    const writer = (async () => {
      for (let i = 1; running; i++) {
        const due = t0 + i * interval;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        // Back-pressure per server: writes stuck on the dead primary's pool must not hold back
        // the ones for the new primary (that would measure the drill, not the failover).
        const ep = pools.endpoint;
        if ((perServer.get(ep) ?? 0) > 200) continue;
        attempted++;
        inflight++;
        perServer.set(ep, (perServer.get(ep) ?? 0) + 1);
        const id = i;
        const viaOld = ep === oldEndpoint;
        void pools.sql`insert into drill_writes (id) values (${id})`
          .then(() => {
            acked.push(id);
            if (killAt && !viaOld) {
              afterFailover++;
              if (!firstAfterKill) firstAfterKill = Date.now();
            }
          })
          .catch(() => failed++)
          .finally(() => {
            inflight--;
            perServer.set(ep, (perServer.get(ep) ?? 1) - 1);
          });
      }
    })();
    const reader = (async () => {
      while (running) {
        await sleep(100);
        if (!killAt || firstAfterKill) continue;
        const rs = router.get();
        try {
          await (rs ?? pools.sql)`select count(*) from drill_writes`;
          reads.ok++;
          if (rs) reads.from_replica++;
        } catch {
          reads.failed++;
        }
      }
    })();

    await sleep(o.warmupMs ?? 3000);
    log(`load running (${acked.length} writes acknowledged); killing the primary`);
    killAt = Date.now();
    primary.kill();
    const fo = await failover({
      primaryUrl: primary.url(),
      replicaUrl: r.url(),
      checks,
      checkIntervalMs,
      checkTimeoutMs: 1000,
      kind: 'drill',
      reason: `drill (${o.mode})`,
      ...(redis ? { redis, channel } : { onPublish: (c) => pools.apply(c) }),
      log,
    });
    const writableAt = Date.parse(fo.writable_at);
    for (let i = 0; !firstAfterKill && i < 300; i++) await sleep(50);
    await sleep(o.afterMs ?? 2000);
    running = false;
    await writer;
    await reader;
    for (let i = 0; inflight > 0 && i < 100; i++) await sleep(50);

    const check = createPool(r.url(), { max: 1 });
    const present = new Set((await check<Array<{ id: number }>>`select id from drill_writes where id > 0`).map((x) => Number(x.id)));
    await check.end();
    const lost = acked.filter((id) => !present.has(id));
    log(`RTO ${firstAfterKill ? firstAfterKill - killAt : 'n/a'} ms, ${lost.length} acknowledged writes lost`);

    let restoreLogical: number | null = null;
    let restorePitr: number | null = null;
    if (o.withRestores && backupDir && backupId && pitr) {
      const t1 = Date.now();
      await restoreBackup({ adminUrl: r.url(), dir: backupDir, retentionDays: 30, jobs: 2, encryptionKey: 'drill-key' }, backupId, { targetDb: 'drill_restore' });
      restoreLogical = Date.now() - t1;
      const t2 = Date.now();
      const port = await freePort();
      const target = path.join(primary.root, `pitr-${port}`);
      await pitrRestore(pitr, { dataDir: target, target: 'latest', port, start: true, socketDir: path.join(primary.root, 'sock') });
      restorePitr = Date.now() - t2;
      await pgCtl('stop', target, { mode: 'immediate' }).catch(() => {});
    }

    let rejoinMs: number | null = null;
    let rejoined: boolean | null = null;
    if (o.withRejoin) {
      const rj = await rejoin({ dataDir: primary.dataDir, newPrimaryUrl: r.url(), port: primary.port, socketDir: path.join(primary.root, 'sock') });
      rejoinMs = rj.ms;
      const back = createPool(primary.url(), { max: 1 });
      try {
        const [s] = await back<Array<{ r: boolean }>>`select pg_is_in_recovery() as r`;
        rejoined = s!.r;
      } finally {
        await back.end();
      }
    }

    return {
      mode: o.mode,
      rate_per_second: rate,
      writes_attempted: attempted,
      writes_acknowledged: acked.length,
      writes_failed: failed,
      writes_after_failover: afterFailover,
      rto_ms: firstAfterKill ? firstAfterKill - killAt : null,
      kill_to_writable_ms: writableAt - killAt,
      failover: { promote_ms: fo.promote_ms, total_ms: fo.total_ms, synchronous_cleared: fo.synchronous_cleared, published: fo.published, recorded: fo.recorded, notes: fo.notes },
      rpo_writes_lost: lost.length,
      rpo_seconds: Math.round((lost.length / rate) * 1000) / 1000,
      reads_during_outage: reads,
      pool_switched_without_restart: pools.switches.length === 1 && pools.endpoint === `127.0.0.1:${r.port}`,
      restore_logical_ms: restoreLogical,
      restore_pitr_ms: restorePitr,
      rejoin_ms: rejoinMs,
      rejoined_as_replica: rejoined,
      check_interval_ms: checkIntervalMs,
      checks,
    };
  } finally {
    for (const c of closers.reverse()) await c().catch(() => {});
    if (replica) await replica.stop('immediate');
    await primary.stop('immediate');
    rmSync(primary.root, { recursive: true, force: true });
  }
}
