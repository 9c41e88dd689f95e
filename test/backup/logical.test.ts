// Logical backups against a database of the shared test server (only databases of our own are
// created and dropped there; the server is never reconfigured).
import { mkdtempSync, readFileSync, rmSync, writeFileSync, statSync, truncateSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { backupDirSource } from '../../src/ops/backup/source.js';
import {
  createBackup,
  listBackups,
  logicalDir,
  pruneBackups,
  restoreBackup,
  RestoreRefused,
  tableChecksums,
  verifyBackup,
  type BackupManifest,
  type BackupProgress,
  type BackupSettings,
} from '../../src/ops/backup/backup.js';
import { BackupIntegrityError } from '../../src/ops/backup/crypto.js';

let db: TestDatabase;
let dir: string;
let settings: BackupSettings;
const events: BackupProgress[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-backup-'));
  settings = { adminUrl: db.adminUrl, dir, encryptionKey: 'test-backup-key-not-secret', retentionDays: 30, jobs: 2, onProgress: (p) => events.push(p) };
  await db.adminSql.unsafe(`
    create table backup_probe (id int primary key, label text, amount numeric(12,4), at timestamptz, payload jsonb, blob bytea);
    insert into backup_probe
      select g, 'row ' || g, g * 1.2345, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', jsonb_build_object('g', g, 'odd', g % 2 = 1), decode(md5(g::text), 'hex')
      from generate_series(1, 5000) g;
    insert into tenants (name, domain) values ('Backup Co', 'backup.example');`);
});

afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('logical backups', () => {
  let first: BackupManifest;
  let before: Awaited<ReturnType<typeof tableChecksums>>;

  it('creates an encrypted custom-format dump with a manifest (sha256, size, version, per-table rows and checksums, retention)', async () => {
    before = await tableChecksums(db.adminSql);
    first = await createBackup(settings);
    expect(first.status).toBe('ok');
    expect(first.encrypted).toBe(true);
    expect(first.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(first.size).toBe(statSync(path.join(logicalDir(dir), first.file)).size);
    expect(first.server_version).toMatch(/^\d+/);
    const probe = first.tables.find((t) => t.table === 'public.backup_probe');
    expect(probe?.rows).toBe(5000);
    expect(first.tables).toEqual(before);
    expect(Date.parse(first.retain_until!) - Date.parse(first.created_at)).toBe(30 * 86_400_000);
    // Encrypted at rest: the plaintext custom-format magic is not in the file.
    expect(readFileSync(path.join(logicalDir(dir), first.file)).subarray(0, 5).toString()).not.toBe('PGDMP');
    expect(events.some((e) => e.phase === 'dump')).toBe(true);
    expect(listBackups(dir).map((b) => b.id)).toContain(first.id);
    // The Backup-Stale alarm's source reads the same manifest.
    expect(await backupDirSource(dir).lastGoodBackup()).toMatchObject({ id: first.id });
  });

  it('verify restores into a scratch database and compares every table', async () => {
    const v = await verifyBackup(settings, first.id);
    expect(v.checks.filter((c) => !c.ok)).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.checks.map((c) => c.check)).toEqual(expect.arrayContaining(['sha256', 'decrypt', 'toc', 'restore', 'tables']));
  });

  it('backup → wipe → restore gives identical checksums; a live database is not replaced without --force', async () => {
    await db.adminSql.unsafe(`drop table backup_probe; delete from tenants where name = 'Backup Co'`);
    expect(await tableChecksums(db.adminSql)).not.toEqual(before);
    await expect(restoreBackup(settings, first.id)).rejects.toBeInstanceOf(RestoreRefused);
    const r = await restoreBackup(settings, first.id, { force: true });
    expect(r.ok).toBe(true);
    expect(r.replaced).toBe(true);
    expect(await tableChecksums(db.adminSql)).toEqual(before);
  });

  it('verify catches a flipped byte and a truncation; restore refuses such a file', async () => {
    const file = path.join(logicalDir(dir), first.file);
    const good = readFileSync(file);
    try {
      const bad = Buffer.from(good);
      bad[Math.floor(bad.length / 2)]! ^= 0x01;
      writeFileSync(file, bad);
      const v = await verifyBackup(settings, first.id);
      expect(v.ok).toBe(false);
      expect(v.checks.find((c) => c.check === 'sha256')?.ok).toBe(false);
      expect(v.checks.find((c) => c.check === 'decrypt')?.ok).toBe(false);
      await expect(restoreBackup(settings, first.id, { targetDb: `${db.name}_x`, force: true })).rejects.toBeInstanceOf(BackupIntegrityError);
      writeFileSync(file, good);
      truncateSync(file, good.length - 100);
      const t = await verifyBackup(settings, first.id);
      expect(t.ok).toBe(false);
      expect(t.checks.find((c) => c.check === 'size')?.ok).toBe(false);
    } finally {
      writeFileSync(file, good);
    }
  });

  it('verify compares row data, not only the file hash (a dump altered before it was hashed)', async () => {
    const plain = await createBackup({ ...settings, encryptionKey: undefined });
    expect(plain.encrypted).toBe(false);
    const mfile = path.join(logicalDir(dir), `${plain.id}.json`);
    const m = JSON.parse(readFileSync(mfile, 'utf8')) as BackupManifest;
    // The manifest's checksum of one table no longer matches its data (as if a row had changed
    // between snapshot and file): the file hash still matches, the table comparison must not.
    const probe = m.tables.find((t) => t.table === 'public.backup_probe')!;
    probe.checksum = createHash('md5').update('other').digest('hex');
    writeFileSync(mfile, JSON.stringify(m));
    const v = await verifyBackup(settings, plain.id);
    expect(v.checks.find((c) => c.check === 'sha256')?.ok).toBe(true);
    expect(v.checks.find((c) => c.check === 'tables')).toMatchObject({ ok: false });
    expect(v.ok).toBe(false);
  });

  it('dr_events (migration 0030) exists and app_user gets nothing on it', async () => {
    const [r] = await db.adminSql<Array<{ s: boolean; i: boolean }>>`
      select has_table_privilege('app_user', 'dr_events', 'select') as s, has_table_privilege('app_user', 'dr_events', 'insert') as i`;
    expect(r).toEqual({ s: false, i: false });
  });

  it('prune removes untagged backups past 30 days and keeps tagged snapshots', async () => {
    const tagged = await createBackup(settings, { tag: 'before-migration-42' });
    expect(tagged.retain_until).toBeNull();
    const dry = pruneBackups(dir, { now: new Date(Date.now() + 31 * 86_400_000), dryRun: true });
    expect(dry.deleted.length).toBeGreaterThanOrEqual(2);
    expect(listBackups(dir).length).toBe(3);
    const early = pruneBackups(dir, { now: new Date(Date.now() + 29 * 86_400_000) });
    expect(early.deleted).toEqual([]);
    const late = pruneBackups(dir, { now: new Date(Date.now() + 31 * 86_400_000) });
    expect(late.deleted.map((d) => d.id)).toContain(first.id);
    expect(listBackups(dir).map((b) => b.id)).toEqual([tagged.id]);
  });
});
