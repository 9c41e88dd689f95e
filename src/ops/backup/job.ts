// The scheduler's daily `backup` job (03:00 UTC, in the spec's 03:00-04:00 window): a logical
// backup, its verification (restore into a scratch database + table comparison), the 30-day prune
// and the Redis snapshot. PITR base backups are pgBackRest's own schedule (see docs).
import type { Redis } from 'ioredis';
import type { Config } from '../../config/index.js';
import type { Sql } from '../../db/pool.js';
import type { Logger } from '../../logging.js';
import { createBackup, pruneBackups, verifyBackup } from './backup.js';
import { backupRedis } from './redis.js';

/** A postgres:// URL for the server and database a postgres.js pool connects to. */
function urlOfPool(sql: Sql): string {
  const o = (sql as unknown as { options: { host: string[]; port: number[]; user: string; pass: unknown; database: string } }).options;
  const u = new URL('postgres://localhost');
  u.hostname = o.host[0] ?? 'localhost';
  u.port = String(o.port[0] ?? 5432);
  u.username = o.user;
  if (typeof o.pass === 'string') u.password = o.pass;
  u.pathname = '/' + o.database;
  return u.toString();
}

function urlOfRedis(r: Redis): string {
  const o = r.options;
  const u = new URL('redis://localhost');
  u.hostname = o.host ?? '127.0.0.1';
  u.port = String(o.port ?? 6379);
  if (o.username) u.username = o.username;
  if (o.password) u.password = o.password;
  if (o.tls) u.protocol = 'rediss:';
  return u.toString();
}

export async function runDailyBackup(deps: { adminSql: Sql; redis?: Redis; log?: Logger; config: Config }): Promise<unknown> {
  const config = deps.config;
  const adminUrl = config.DATABASE_ADMIN_URL ?? urlOfPool(deps.adminSql);
  const s = { adminUrl, dir: config.backupDir, encryptionKey: config.BACKUP_ENCRYPTION_KEY, retentionDays: config.BACKUP_RETENTION_DAYS, jobs: config.BACKUP_JOBS };
  const m = await createBackup(s);
  const v = await verifyBackup(s, m.id);
  const pruned = pruneBackups(config.backupDir);
  let redis: unknown = 'no Redis connection';
  if (deps.redis) {
    try {
      const r = await backupRedis({ url: config.REDIS_URL ?? urlOfRedis(deps.redis), client: deps.redis, dir: config.backupDir, keep: config.BACKUP_REDIS_KEEP, encryptionKey: config.BACKUP_ENCRYPTION_KEY });
      redis = { id: r.meta.id, keys: r.meta.total_keys };
    } catch (err) {
      redis = `failed: ${(err as Error).message}`;
    }
  }
  deps.log?.info({ backup: m.id, verified: v.ok, pruned: pruned.deleted.length }, 'daily backup done');
  if (!v.ok) throw new Error(`backup ${m.id} failed verification: ${v.checks.filter((c) => !c.ok).map((c) => `${c.check}: ${c.detail}`).join('; ')}`);
  return { outcome: 'ok', id: m.id, size: m.size, rows: m.total_rows, verified: v.ok, pruned: pruned.deleted.map((d) => d.id), redis };
}
