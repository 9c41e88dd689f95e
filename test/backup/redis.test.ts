// Redis snapshot: scratch redis-servers only (the shared 6379 is never touched).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupRedis, extractRedisBackup, listRedisBackups } from '../../src/ops/backup/redis.js';
import { startScratchRedis, type ScratchRedis } from '../ops/servers.js';

let source: ScratchRedis;
let dir: string;
const servers: ScratchRedis[] = [];

beforeAll(async () => {
  // Diskless replication waits 5 s for more replicas by default; no need in a test.
  source = await startScratchRedis(['--repl-diskless-sync-delay', '0']);
  dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-redis-backup-'));
  const p = source.client.pipeline();
  for (let i = 0; i < 500; i++) p.set(`sess:${i}`, JSON.stringify({ user: i }), 'EX', 3600);
  for (let i = 0; i < 50; i++) p.rpush(`{accunode}:bulk:${i}`, 'a', 'b');
  p.select(1);
  p.set('other-db', '1');
  await p.exec();
});
afterAll(async () => {
  for (const s of [source, ...servers]) await s?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('backup redis', () => {
  it('saves an encrypted RDB snapshot that a scratch redis-server loads with the same key counts; keeps 5', async () => {
    const key = 'redis-backup-test-key';
    const { meta } = await backupRedis({ url: source.url, client: source.client, dir, encryptionKey: key });
    expect(meta.keys).toEqual({ db0: 550, db1: 1 });
    expect(meta.encrypted).toBe(true);
    const loadDir = mkdtempSync(path.join(os.tmpdir(), 'accunode-redis-load-'));
    await extractRedisBackup(dir, meta.id, path.join(loadDir, 'restore.rdb'), key);
    const restored = await startScratchRedis(['--dir', loadDir, '--dbfilename', 'restore.rdb']);
    servers.push(restored);
    expect(await restored.client.dbsize()).toBe(550);
    await restored.client.select(1);
    expect(await restored.client.dbsize()).toBe(1);
    await restored.client.select(0);
    expect(await restored.client.lrange('{accunode}:bulk:7', 0, -1)).toEqual(['a', 'b']);
    for (let i = 0; i < 5; i++) await backupRedis({ url: source.url, client: source.client, dir });
    const all = listRedisBackups(dir);
    expect(all).toHaveLength(5);
    expect(all.map((m) => m.id)).not.toContain(meta.id);
  });
});
