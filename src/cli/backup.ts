// `accunode backup …` (issue 8): logical backups, Redis snapshots, PITR with pgBackRest, status.
import type { Command } from 'commander';
import type { Config } from '../config/index.js';
import type { CliContext } from './context.js';
import {
  createBackup,
  deleteBackup,
  listBackups,
  pruneBackups,
  restoreBackup,
  verifyBackup,
  type BackupProgress,
  type BackupSettings,
} from '../ops/backup/backup.js';
import { backupRedis, listRedisBackups } from '../ops/backup/redis.js';
import { pitrBase, pitrCipherPass, pitrInfo, pitrRestore, pitrSetup, type PitrSettings } from '../ops/backup/pitr.js';
import { UsageError } from './identity.js';
import { formatTable, printResult } from './output.js';

function progressPrinter(quiet: boolean | undefined) {
  return (p: BackupProgress) => {
    if (quiet) return;
    const count = p.total ? ` (${p.done}/${p.total})` : p.done ? ` (${p.done})` : '';
    process.stderr.write(`[${p.phase}] ${p.message}${count}\n`);
  };
}

/** The owner URL (configured, or the local/embedded server `up` uses) and the backup settings. */
async function withBackup<T>(ctx: CliContext, fn: (s: BackupSettings, config: Config) => Promise<T>, quiet?: boolean): Promise<T> {
  const config = ctx.config;
  const db = await ctx.database();
  try {
    return await fn(
      { adminUrl: db.adminUrl, dir: config.backupDir, encryptionKey: config.BACKUP_ENCRYPTION_KEY, retentionDays: config.BACKUP_RETENTION_DAYS, jobs: config.BACKUP_JOBS, onProgress: progressPrinter(quiet) },
      config,
    );
  } finally {
    await db.close();
  }
}

function pitrSettings(config: Config, adminUrl: string): PitrSettings {
  if (!config.PITR_PG_DATA_DIR) throw new UsageError('PITR_PG_DATA_DIR is not set: pgBackRest needs the data directory of the PostgreSQL it backs up (run this on the database host).');
  if (!config.BACKUP_ENCRYPTION_KEY) throw new UsageError('BACKUP_ENCRYPTION_KEY is not set: the pgBackRest repositories are encrypted with a passphrase derived from it.');
  const u = new URL(adminUrl);
  return {
    dir: config.backupDir,
    stanza: config.PITR_STANZA,
    pgDataDir: config.PITR_PG_DATA_DIR,
    pgPort: Number(u.port || 5432),
    pgSocketDir: config.PITR_PG_SOCKET_DIR,
    cipherPass: pitrCipherPass(config.BACKUP_ENCRYPTION_KEY),
    adminUrl,
    repo2Path: config.PITR_REPO2_PATH,
  };
}

const summary = (m: ReturnType<typeof listBackups>[number]) => ({
  id: m.id,
  status: m.status,
  created_at: m.created_at,
  tag: m.tag,
  size: m.size,
  tables: m.tables.length,
  rows: m.total_rows,
  encrypted: m.encrypted,
  retain_until: m.retain_until ?? 'kept (tagged)',
  verified: m.last_verified_at ? `${m.last_verify_ok ? 'ok' : 'FAILED'} ${m.last_verified_at}` : '-',
});

export function registerBackupCommands(program: Command, ctx: CliContext): void {
  const backup = program.command('backup').description('logical backups, Redis snapshots, point-in-time recovery (pgBackRest), status');

  backup
    .command('create')
    .description('pg_dump (custom format) + manifest into BACKUP_DIR/logical, encrypted when BACKUP_ENCRYPTION_KEY is set')
    .option('--tag <name>', 'a manual snapshot: kept until deleted')
    .option('--json', 'print JSON')
    .action(async (o: { tag?: string; json?: boolean }) => {
      const m = await withBackup(ctx, (s) => createBackup(s, { tag: o.tag }));
      printResult(o.json, m, () => formatTable([summary(m)]));
    });

  backup
    .command('list')
    .description('logical backups in BACKUP_DIR, newest first')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      const all = listBackups(ctx.config.backupDir);
      printResult(o.json, all, () => formatTable(all.map(summary)));
    });

  backup
    .command('verify <id>')
    .description('check size, sha256 and decryption, restore into a scratch database and compare every table (rows + checksum); "latest" for the newest')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const v = await withBackup(ctx, (s) => verifyBackup(s, id));
      printResult(o.json, v, () => `${formatTable(v.checks)}\n\nbackup ${v.id}: ${v.ok ? 'VERIFIED' : 'FAILED'} (${v.duration_ms} ms)`);
      if (!v.ok) process.exitCode = 1;
    });

  backup
    .command('restore <id>')
    .description('restore a backup (into the configured database, or --target-db); an existing database is replaced only with --force')
    .option('--target-db <name>', 'restore into this database (created)')
    .option('--force', 'drop and replace an existing database')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { targetDb?: string; force?: boolean; json?: boolean }) => {
      const r = await withBackup(ctx, (s) => restoreBackup(s, id, { targetDb: o.targetDb, force: o.force }));
      printResult(o.json, r, () => `${formatTable(r.checks)}\n\nrestored ${r.id} into ${r.target}${r.replaced ? ' (replaced)' : ''}: ${r.ok ? 'OK' : 'CHECKSUMS DIFFER'} (${r.duration_ms} ms)`);
      if (!r.ok) process.exitCode = 1;
    });

  backup
    .command('prune')
    .description(`delete untagged backups past their retention (BACKUP_RETENTION_DAYS); tagged snapshots are kept`)
    .option('--dry-run', 'only list what would go')
    .option('--json', 'print JSON')
    .action((o: { dryRun?: boolean; json?: boolean }) => {
      const r = pruneBackups(ctx.config.backupDir, { dryRun: !!o.dryRun });
      printResult(o.json, r, () => `${o.dryRun ? 'would delete' : 'deleted'}:\n${formatTable(r.deleted)}\n\nkept:\n${formatTable(r.kept)}`);
    });

  backup
    .command('delete <id>')
    .description('delete one backup (how a tagged snapshot goes)')
    .action((id: string) => {
      deleteBackup(ctx.config.backupDir, id);
      process.stdout.write(`deleted ${id}\n`);
    });

  backup
    .command('redis')
    .description('RDB snapshot of the sessions/queue Redis (REDIS_URL) into BACKUP_DIR/redis; BACKUP_REDIS_KEEP kept. The cache Redis is not backed up')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const config = ctx.config;
      const rr = await ctx.redis('accunode-backup');
      try {
        const r = await backupRedis({ url: rr.url, client: rr.client, dir: config.backupDir, keep: config.BACKUP_REDIS_KEEP, encryptionKey: config.BACKUP_ENCRYPTION_KEY });
        printResult(o.json, r, () => `${formatTable([{ id: r.meta.id, keys: r.meta.total_keys, size: r.meta.size, encrypted: r.meta.encrypted, ms: r.meta.duration_ms }])}${r.removed.length ? `\nremoved: ${r.removed.join(', ')}` : ''}`);
      } finally {
        await rr.close();
      }
    });

  backup
    .command('status')
    .description('latest backups (logical, PITR, Redis) and the point-in-time recoverable window')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const status = await withBackup(ctx, async (s, config) => {
        const logical = listBackups(config.backupDir);
        const pitr = config.PITR_PG_DATA_DIR && config.BACKUP_ENCRYPTION_KEY ? await pitrInfo(pitrSettings(config, s.adminUrl)) : null;
        return {
          logical: { latest: logical.find((m) => m.status === 'ok') ?? null, count: logical.length, tagged: logical.filter((m) => m.tag).length },
          pitr,
          redis: listRedisBackups(config.backupDir)[0] ?? null,
        };
      }, true);
      printResult(o.json, status, () => {
        const l = status.logical.latest;
        const lines = [
          '== logical ==',
          l ? formatTable([summary(l)]) : '(no backup yet: accunode backup create)',
          `${status.logical.count} backups, ${status.logical.tagged} tagged`,
          '',
          '== point-in-time (pgBackRest) ==',
          status.pitr
            ? `${formatTable(status.pitr.backups)}\nrecoverable window: ${status.pitr.recoverable_from ?? '-'} → ${status.pitr.recoverable_to ?? '-'}\nlast WAL archived: ${status.pitr.last_archived_at ?? '-'}${status.pitr.last_failed_at ? `, last archive failure: ${status.pitr.last_failed_at}` : ''}\nstatus: ${status.pitr.status}`
            : '(not configured: PITR_PG_DATA_DIR and BACKUP_ENCRYPTION_KEY, then accunode backup pitr setup)',
          '',
          '== redis ==',
          status.redis ? formatTable([{ id: status.redis.id, saved_at: status.redis.saved_at, keys: status.redis.total_keys, size: status.redis.size }]) : '(none: accunode backup redis)',
        ];
        return lines.join('\n');
      });
    });

  const pitr = backup.command('pitr').description('point-in-time recovery with pgBackRest (two encrypted repositories)');
  pitr
    .command('setup')
    .description('write the pgBackRest configuration (BACKUP_DIR/pitr), set archive_command, create the stanza, check archiving')
    .option('--restart', 'restart the local cluster when archive_mode has to be turned on (pg_ctl, as postgres)')
    .option('--json', 'print JSON')
    .action(async (o: { restart?: boolean; json?: boolean }) => {
      const r = await withBackup(ctx, (s, config) => pitrSetup(pitrSettings(config, s.adminUrl), { restart: !!o.restart }), true);
      printResult(o.json, r, () => formatTable([r]) + (r.restart_required ? '\n\narchive_mode was off: restart PostgreSQL (or run again with --restart), then run setup again.' : ''));
    });
  pitr
    .command('base')
    .description('a base backup into repo1 and repo2 (full, diff or incr)')
    .option('--type <type>', 'full | diff | incr', 'full')
    .option('--repo <n>', 'only this repository')
    .option('--json', 'print JSON')
    .action(async (o: { type: string; repo?: string; json?: boolean }) => {
      if (!['full', 'diff', 'incr'].includes(o.type)) throw new UsageError('--type must be full, diff or incr');
      const r = await withBackup(ctx, (s, config) => pitrBase(pitrSettings(config, s.adminUrl), { type: o.type as 'full', repos: o.repo ? [Number(o.repo)] : [1, 2] }), true);
      printResult(o.json, r, () => formatTable(r));
    });
  pitr
    .command('restore')
    .description('restore the cluster as of a moment into an empty directory (never over the live cluster)')
    .requiredOption('--to <timestamp>', 'ISO 8601 timestamp, or "latest"')
    .requiredOption('--data-dir <dir>', 'empty directory for the restored cluster')
    .option('--repo <n>', 'restore from this repository only (2 = cross-region copy)')
    .option('--port <port>', 'start the restored cluster on this port and wait for recovery to finish')
    .option('--json', 'print JSON')
    .action(async (o: { to: string; dataDir: string; repo?: string; port?: string; json?: boolean }) => {
      const r = await withBackup(ctx, 
        (s, config) => pitrRestore(pitrSettings(config, s.adminUrl), { dataDir: o.dataDir, target: o.to, ...(o.repo ? { repo: Number(o.repo) } : {}), ...(o.port ? { port: Number(o.port), start: true } : {}) }),
        true,
      );
      printResult(o.json, r, () => formatTable([r]) + (o.port ? '' : `\n\nstart it with: runuser -u postgres -- pg_ctl -D ${o.dataDir} -o "-p PORT" start`));
    });
}
