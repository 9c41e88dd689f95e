// `accunode dr …` (issue 8): replicas, failover, watch, rejoin, status, drill.
import type { Command } from 'commander';
import type { Config } from '../config/index.js';
import type { CliContext } from './context.js';
import { listBackups } from '../ops/backup/backup.js';
import { createReplica, drStatus, failover, rejoin, watch, type FailoverResult } from '../ops/dr/dr.js';
import { runDrill, type DrillReport } from '../ops/dr/drill.js';
import { UsageError } from './identity.js';
import { formatTable, printResult } from './output.js';

function primaryUrl(config: Config, given?: string): string | undefined {
  return given ?? config.DATABASE_ADMIN_URL;
}

function renderFailover(r: FailoverResult): string {
  return [
    formatTable(r.health_checks.map((c) => ({ at: c.at, ok: c.ok, writable: c.writable, ms: c.ms, error: c.error }))),
    '',
    formatTable([{ old_primary: r.old_primary, new_primary: r.new_primary, forced: r.forced, promote_ms: r.promote_ms, total_ms: r.total_ms, event_id: r.event_id, published: r.published, notified: r.notified }]),
    ...r.notes.map((n) => `note: ${n}`),
    r.notify_error ? `webhook: ${r.notify_error}` : '',
  ].join('\n');
}

function renderDrill(rs: DrillReport[]): string {
  return formatTable(
    rs.map((r) => ({
      mode: r.mode,
      rate: r.rate_per_second,
      acked: r.writes_acknowledged,
      rto_ms: r.rto_ms,
      kill_to_writable_ms: r.kill_to_writable_ms,
      rpo_writes_lost: r.rpo_writes_lost,
      rpo_s: r.rpo_seconds,
      replica_reads_in_outage: r.reads_during_outage.from_replica,
      no_restart: r.pool_switched_without_restart,
      restore_logical_ms: r.restore_logical_ms,
      restore_pitr_ms: r.restore_pitr_ms,
      rejoin_ms: r.rejoin_ms,
    })),
  );
}

export function registerDrCommands(program: Command, ctx: CliContext): void {
  const dr = program.command('dr').description('disaster recovery: read replicas, failover, watch, rejoin, status, drill');

  dr.command('replica')
    .description('read replicas')
    .command('create')
    .description('a local streaming replica (pg_basebackup -R -X stream, as postgres), started on --port')
    .requiredOption('--port <port>', 'port of the new replica')
    .requiredOption('--data-dir <dir>', 'empty directory for it')
    .option('--primary <url>', 'superuser/replication URL of the primary (default DATABASE_ADMIN_URL)')
    .option('--json', 'print JSON')
    .action(async (o: { port: string; dataDir: string; primary?: string; json?: boolean }) => {
      const url = primaryUrl(ctx.config, o.primary);
      if (!url) throw new UsageError('no primary: pass --primary URL or set DATABASE_ADMIN_URL');
      const r = await createReplica({ primaryUrl: url, port: Number(o.port), dataDir: o.dataDir, applicationName: `accunode_replica_${o.port}` });
      printResult(o.json, r, () => formatTable([r]) + `\n\nadd it to DATABASE_READ_URLS (as app_user) to route analytics to it.`);
    });

  dr.command('failover')
    .description('promote a replica when the primary fails DR_FAILURE_CHECKS health checks (refuses while the primary accepts writes unless --force), record, publish, notify')
    .requiredOption('--replica <url>', 'superuser URL of the replica to promote')
    .option('--primary <url>', 'URL of the current primary (default DATABASE_ADMIN_URL)')
    .option('--force', 'promote without the checks / despite a reachable primary (fence it first!)')
    .option('--reason <text>', 'recorded with the event')
    .option('--json', 'print JSON')
    .action(async (o: { replica: string; primary?: string; force?: boolean; reason?: string; json?: boolean }) => {
      const config = ctx.config;
      const published = await ctx.redisIfUp('accunode-dr');
      const redis = published?.client ?? null;
      try {
        const r = await failover({
          primaryUrl: primaryUrl(config, o.primary),
          replicaUrl: o.replica,
          force: !!o.force,
          checks: config.DR_FAILURE_CHECKS,
          checkIntervalMs: config.DR_CHECK_INTERVAL_SECONDS * 1000,
          redis: redis ?? undefined,
          webhookUrl: config.ALARM_WEBHOOK_URL,
          ...(o.reason ? { reason: o.reason } : {}),
          log: (m) => process.stderr.write(`[failover] ${m}\n`),
        });
        printResult(o.json, r, () => renderFailover(r));
      } finally {
        redis?.disconnect();
      }
    });

  dr.command('watch')
    .description('health-check the primary every DR_CHECK_INTERVAL_SECONDS; fail over to --replica after DR_FAILURE_CHECKS consecutive failures or DR_MAX_UNAVAILABLE_SECONDS')
    .requiredOption('--replica <url>', 'superuser URL of the replica to promote')
    .option('--primary <url>', 'URL of the primary (default DATABASE_ADMIN_URL)')
    .option('--interval <seconds>', 'override DR_CHECK_INTERVAL_SECONDS')
    .option('--json', 'print JSON')
    .action(async (o: { replica: string; primary?: string; interval?: string; json?: boolean }) => {
      const config = ctx.config;
      const url = primaryUrl(config, o.primary);
      if (!url) throw new UsageError('no primary: pass --primary URL or set DATABASE_ADMIN_URL');
      const published = await ctx.redisIfUp('accunode-dr');
      const redis = published?.client ?? null;
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      process.once('SIGTERM', () => ac.abort());
      const intervalMs = (o.interval ? Number(o.interval) : config.DR_CHECK_INTERVAL_SECONDS) * 1000;
      process.stderr.write(`[watch] checking ${new URL(url).host} every ${intervalMs / 1000} s; failover after ${config.DR_FAILURE_CHECKS} failures or ${config.DR_MAX_UNAVAILABLE_SECONDS} s\n`);
      try {
        const r = await watch({
          primaryUrl: url,
          replicaUrl: o.replica,
          intervalMs,
          failures: config.DR_FAILURE_CHECKS,
          maxUnavailableMs: config.DR_MAX_UNAVAILABLE_SECONDS * 1000,
          redis: redis ?? undefined,
          webhookUrl: config.ALARM_WEBHOOK_URL,
          signal: ac.signal,
          onCheck: (c, n) => {
            if (!c.writable) process.stderr.write(`[watch] ${c.at} primary check failed (${n} in a row): ${c.error ?? 'in recovery'}\n`);
          },
          log: (m) => process.stderr.write(`[failover] ${m}\n`),
        });
        if (r) printResult(o.json, r, () => renderFailover(r));
      } finally {
        redis?.disconnect();
      }
    });

  dr.command('rejoin')
    .description('turn the old primary into a replica of the new one (pg_rewind -R, as postgres) so it cannot come back as a second primary')
    .requiredOption('--data-dir <dir>', 'data directory of the old primary')
    .requiredOption('--new-primary <url>', 'superuser URL of the new primary')
    .option('--port <port>', 'port to start it on')
    .option('--restore-target-wal', 'let pg_rewind fetch recycled WAL through restore_command (pgBackRest)')
    .option('--json', 'print JSON')
    .action(async (o: { dataDir: string; newPrimary: string; port?: string; restoreTargetWal?: boolean; json?: boolean }) => {
      const r = await rejoin({ dataDir: o.dataDir, newPrimaryUrl: o.newPrimary, ...(o.port ? { port: Number(o.port) } : {}), restoreTargetWal: !!o.restoreTargetWal });
      printResult(o.json, r, () => formatTable([r]));
    });

  dr.command('status')
    .description('primary, its standbys and their lag, the read replicas, the last DR event and the last backup')
    .option('--primary <url>', 'default DATABASE_ADMIN_URL')
    .option('--json', 'print JSON')
    .action(async (o: { primary?: string; json?: boolean }) => {
      const config = ctx.config;
      const s = await drStatus(primaryUrl(config, o.primary), config.DATABASE_READ_URLS);
      const last = listBackups(config.backupDir).find((m) => m.status === 'ok') ?? null;
      const out = { ...s, last_backup: last ? { id: last.id, created_at: last.created_at, tag: last.tag } : null };
      printResult(o.json, out, () =>
        [
          '== primary ==',
          s.primary ? formatTable([s.primary]) : '(no primary URL: DATABASE_ADMIN_URL or --primary)',
          `synchronous_standby_names: ${s.synchronous_standby_names || '(async)'}`,
          '',
          '== standbys (pg_stat_replication) ==',
          formatTable(s.standbys),
          '',
          '== read replicas (DATABASE_READ_URLS) ==',
          formatTable(s.replicas),
          '',
          `last DR event: ${s.last_event ? JSON.stringify(s.last_event) : '-'}`,
          `last backup: ${last ? `${last.id} at ${last.created_at}` : '-'}`,
        ].join('\n'),
      );
    });

  dr.command('drill')
    .description('failover drill on throwaway local clusters: 200 writes/s, kill the primary, fail over, report RTO/RPO (async and sync) and restore times')
    .option('--mode <mode>', 'async | sync | both', 'both')
    .option('--rate <n>', 'writes per second', '200')
    .option('--check-interval <ms>', 'failover health-check interval', '1000')
    .option('--no-restores', 'skip timing the logical and PITR restores')
    .option('--json', 'print JSON')
    .action(async (o: { mode: string; rate: string; checkInterval: string; restores: boolean; json?: boolean }) => {
      if (!['async', 'sync', 'both'].includes(o.mode)) throw new UsageError('--mode must be async, sync or both');
      const published = await ctx.redisIfUp('accunode-dr');
      const redis = published?.client ?? null;
      const redisUrl = published?.url;
      redis?.disconnect();
      const modes = o.mode === 'both' ? (['async', 'sync'] as const) : ([o.mode] as Array<'async' | 'sync'>);
      const reports: DrillReport[] = [];
      for (const mode of modes)
        reports.push(
          await runDrill({ mode, rate: Number(o.rate), checkIntervalMs: Number(o.checkInterval), redisUrl, withRestores: o.restores, withRejoin: true, log: (m) => process.stderr.write(`[drill ${mode}] ${m}\n`) }),
        );
      printResult(o.json, reports, () => renderDrill(reports));
    });
}
