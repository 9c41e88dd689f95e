// The backup path when its directory is full or read-only (a tmpfs of our own, mounted for the
// test): the backup fails with the filesystem's error, leaves no partial file, and no promise is
// left rejected without a handler (vitest fails a file with an unhandled rejection). And a
// long-running process logs an unhandled rejection and keeps going instead of exiting.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { createBackup, logicalDir } from '../../src/ops/backup/backup.js';

let db: TestDatabase;
let mnt: string;
let mountable = true;
const rejections: unknown[] = [];
const onRejection = (r: unknown) => rejections.push(r);

const mount = (opts: string) => execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', mnt], { stdio: 'pipe' });
const umount = () => {
  try {
    execFileSync('umount', [mnt], { stdio: 'pipe' });
  } catch {
    /* not mounted */
  }
};

beforeAll(async () => {
  db = await createTestDatabase();
  // Enough rows that pg_dump writes well past 16 kB.
  await db.adminSql.unsafe(`create table fill (id int primary key, pad text);
    insert into fill select g, md5(g::text) || md5((g * 7)::text) from generate_series(1, 20000) g;`);
  mnt = mkdtempSync(path.join(os.tmpdir(), 'accunode-i16-fullfs-'));
  try {
    mount('size=16k');
    umount();
  } catch {
    mountable = false;
  }
  process.on('unhandledRejection', onRejection);
});

afterAll(async () => {
  process.off('unhandledRejection', onRejection);
  umount();
  if (mnt) rmSync(mnt, { recursive: true, force: true });
  await db?.drop();
});

function leftBehind(): string[] {
  const ldir = logicalDir(mnt);
  return existsSync(ldir) ? readdirSync(ldir).filter((f) => f.endsWith('.partial') || f.endsWith('.dump') || f.endsWith('.tmp')) : [];
}

describe('backup into a full or read-only directory', () => {
  it('a full filesystem: ENOSPC from the backup, nothing partial left, no unhandled rejection', async (ctx) => {
    if (!mountable) ctx.skip();
    mount('size=16k');
    try {
      const err = await createBackup({ adminUrl: db.adminUrl, dir: mnt, retentionDays: 7, jobs: 1 }).then(() => null, (e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).toMatch(/ENOSPC|no space/i);
      expect(leftBehind()).toEqual([]);
      // Give a stray rejection the turns it needs to surface.
      await new Promise((r) => setTimeout(r, 200));
      expect(rejections).toEqual([]);
    } finally {
      umount();
    }
  });

  it('a read-only filesystem: EROFS opening the .partial file, no unhandled rejection', async (ctx) => {
    if (!mountable) ctx.skip();
    mount('size=1m');
    try {
      mkdirSync(path.join(mnt, 'logical'));
      execFileSync('mount', ['-o', 'remount,ro', mnt], { stdio: 'pipe' });
      const err = await createBackup({ adminUrl: db.adminUrl, dir: mnt, retentionDays: 7, jobs: 1 }).then(() => null, (e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).toMatch(/EROFS|read-only/i);
      await new Promise((r) => setTimeout(r, 200));
      expect(rejections).toEqual([]);
    } finally {
      umount();
    }
  });
});

describe('a long-running process and an unhandled rejection', () => {
  it('logs it and keeps running (Shutdown.install guards every role)', async () => {
    const script = `
      import { Shutdown } from './src/entrypoints/shutdown.ts';
      import { createLogger } from './src/logging.ts';
      new Shutdown(createLogger('info')).install();
      Promise.reject(new Error('disk full in a forgotten promise'));
      setTimeout(() => { process.stdout.write('STILL-RUNNING\\n'); process.exit(0); }, 300);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(out).toContain('unhandled promise rejection');
    expect(out).toContain('disk full in a forgotten promise');
    expect(out).toContain('STILL-RUNNING');
    expect(code).toBe(0);
  });
});
