// `accunode backup redis` (issue 8, item 3): an RDB snapshot of the sessions/queue Redis
// (REDIS_URL) into BACKUP_DIR/redis, newest `keep` (5) retained. `redis-cli --rdb` fetches the
// snapshot over the replication protocol, so it works for a remote server too and never touches
// the server's own dump file or configuration. Encrypted (AES-256-GCM) when
// BACKUP_ENCRYPTION_KEY is set: sessions are credentials. The cache Redis is not backed up.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Redis } from 'ioredis';
import { decryptFile, encryptStream } from './crypto.js';
import { run } from '../dr/local.js';

interface RedisBackupMeta {
  id: string;
  kind: 'redis-rdb';
  file: string;
  encrypted: boolean;
  sha256: string;
  size: number;
  /** Keys per database at the time of the snapshot (INFO keyspace). */
  keys: Record<string, number>;
  total_keys: number;
  redis_version: string;
  saved_at: string;
  duration_ms: number;
}

function redisBackupDir(dir: string): string {
  return path.join(dir, 'redis');
}

function parseKeyspace(info: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^(db\d+):keys=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** Arguments and environment for redis-cli from a redis:// URL (password through REDISCLI_AUTH). */
function cliArgs(url: string): { args: string[]; env: NodeJS.ProcessEnv } {
  const u = new URL(url);
  const args = ['-h', u.hostname, '-p', u.port || '6379'];
  if (u.username && u.username !== 'default') args.push('--user', decodeURIComponent(u.username));
  if (u.protocol === 'rediss:') args.push('--tls');
  return { args, env: u.password ? { REDISCLI_AUTH: decodeURIComponent(u.password) } : {} };
}

export async function backupRedis(o: { url: string; client: Redis; dir: string; keep?: number; encryptionKey?: string | undefined }): Promise<{ meta: RedisBackupMeta; removed: string[] }> {
  const t0 = Date.now();
  const rdir = redisBackupDir(o.dir);
  mkdirSync(rdir, { recursive: true, mode: 0o700 });
  const now = new Date();
  const id = 'redis-' + now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z') + '-' + randomBytes(2).toString('hex');
  const info = await o.client.info();
  const keys = parseKeyspace(info);
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  const raw = path.join(rdir, `.${id}.rdb.partial`);
  const { args, env } = cliArgs(o.url);
  try {
    await run('redis-cli', [...args, '--rdb', raw], { env });
    const file = `${id}.rdb${o.encryptionKey ? '.enc' : ''}`;
    const full = path.join(rdir, file);
    if (o.encryptionKey) await pipeline(createReadStream(raw), encryptStream(o.encryptionKey), createWriteStream(full, { mode: 0o600 }));
    else await pipeline(createReadStream(raw), createWriteStream(full, { mode: 0o600 }));
    const sha = createHash('sha256').update(readFileSync(full)).digest('hex');
    const meta: RedisBackupMeta = {
      id,
      kind: 'redis-rdb',
      file,
      encrypted: !!o.encryptionKey,
      sha256: sha,
      size: statSync(full).size,
      keys,
      total_keys: Object.values(keys).reduce((a, b) => a + b, 0),
      redis_version: version,
      saved_at: now.toISOString(),
      duration_ms: Date.now() - t0,
    };
    // ".meta", not ".json": the database backup alarm reads BACKUP_DIR's JSON manifests.
    writeFileSync(path.join(rdir, `${id}.meta`), JSON.stringify(meta, null, 2) + '\n', { mode: 0o600 });
    return { meta, removed: pruneRedisBackups(o.dir, o.keep ?? 5) };
  } finally {
    rmSync(raw, { force: true });
  }
}

export function listRedisBackups(dir: string): RedisBackupMeta[] {
  const rdir = redisBackupDir(dir);
  if (!existsSync(rdir)) return [];
  return readdirSync(rdir)
    .filter((f) => f.endsWith('.meta'))
    .map((f) => JSON.parse(readFileSync(path.join(rdir, f), 'utf8')) as RedisBackupMeta)
    .sort((a, b) => b.saved_at.localeCompare(a.saved_at));
}

function pruneRedisBackups(dir: string, keep: number): string[] {
  const removed: string[] = [];
  for (const m of listRedisBackups(dir).slice(keep)) {
    rmSync(path.join(redisBackupDir(dir), m.file), { force: true });
    rmSync(path.join(redisBackupDir(dir), `${m.id}.meta`), { force: true });
    removed.push(m.id);
  }
  return removed;
}

/** Writes the snapshot as a plain RDB file (decrypting it) for a redis-server to load. */
export async function extractRedisBackup(dir: string, id: string, dest: string, encryptionKey?: string): Promise<RedisBackupMeta> {
  const m = listRedisBackups(dir).find((b) => b.id === id || (id === 'latest' && b === listRedisBackups(dir)[0]));
  if (!m) throw new Error(`no Redis backup ${id}`);
  const src = path.join(redisBackupDir(dir), m.file);
  if (createHash('sha256').update(readFileSync(src)).digest('hex') !== m.sha256) throw new Error(`${m.file}: sha256 does not match its metadata`);
  if (m.encrypted) {
    if (!encryptionKey) throw new Error('the Redis backup is encrypted and BACKUP_ENCRYPTION_KEY is not set');
    await decryptFile(src, encryptionKey, dest);
  } else await pipeline(createReadStream(src), createWriteStream(dest, { mode: 0o600 }));
  return m;
}
