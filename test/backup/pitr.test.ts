// PITR with pgBackRest (apt) on a private cluster: two encrypted repositories, a restore to a
// moment between two writes, and a restore from repo2 alone (repo1 moved away).
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Sql } from '../../src/db/pool.js';
import { startLocalCluster, type LocalCluster } from '../../src/ops/dr/drill.js';
import { ensurePostgresDir, freePort, pgCtl, sleep } from '../../src/ops/dr/local.js';
import { moveRepoAside, pitrBase, pitrInfo, pitrRestore, pitrSetup, type PitrSettings } from '../../src/ops/backup/pitr.js';

let pg: LocalCluster;
let sql: Sql;
let s: PitrSettings;
const started: string[] = [];

beforeAll(async () => {
  pg = await startLocalCluster(`archive_mode = on\narchive_command = '/bin/true'\n`);
  sql = createPool(pg.url(), { max: 1 });
  await sql`create table events (label text primary key, at timestamptz default clock_timestamp())`;
  const dir = ensurePostgresDir(path.join(pg.root, 'backups'), 0o750);
  s = { dir, stanza: 'accunode', pgDataDir: pg.dataDir, pgPort: pg.port, pgSocketDir: path.join(pg.root, 'sock'), cipherPass: 'test-cipher-pass', adminUrl: pg.url() };
}, 60_000);

afterAll(async () => {
  await sql?.end();
  for (const d of started) await pgCtl('stop', d, { mode: 'immediate' }).catch(() => {});
  await pg?.stop('immediate');
  if (pg) rmSync(pg.root, { recursive: true, force: true });
});

async function archived(): Promise<void> {
  const [w] = await sql<Array<{ f: string }>>`select pg_walfile_name(pg_switch_wal()) as f`;
  for (let i = 0; i < 150; i++) {
    const [a] = await sql<Array<{ last: string | null }>>`select last_archived_wal as last from pg_stat_archiver`;
    if (a!.last && a!.last >= w!.f) return;
    await sleep(100);
  }
  throw new Error('WAL was not archived');
}

async function labelsAt(dataDir: string, port: number): Promise<string[]> {
  started.push(dataDir);
  const c = createPool(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1 });
  try {
    return (await c<Array<{ label: string }>>`select label from events order by label`).map((r) => r.label);
  } finally {
    await c.end();
  }
}

describe('backup pitr', () => {
  let target: string;

  it('setup writes the stanza and archive_command; base backs up into both encrypted repositories; status shows the window', async () => {
    const r = await pitrSetup(s);
    expect(r.checked).toBe(true);
    expect(r.archive_command).toContain('archive-push');
    const base = await pitrBase(s, { type: 'full' });
    expect(base.map((b) => b.repo)).toEqual([1, 2]);
    // pgBackRest's time targets have 1-second resolution: the first write lands a full second
    // after the backup stopped.
    await sleep(1100);
    await sql`insert into events (label) values ('first')`;
    const [t] = await sql<Array<{ t: Date }>>`select clock_timestamp() as t`;
    target = new Date(t!.t.getTime() + 400).toISOString();
    await sleep(1200);
    await sql`insert into events (label) values ('second')`;
    await archived();
    const info = await pitrInfo(s);
    expect(info.backups.map((b) => b.repo).sort()).toEqual([1, 2]);
    expect(info.recoverable_from).not.toBeNull();
    expect(Date.parse(info.recoverable_to!)).toBeGreaterThanOrEqual(Date.parse(info.recoverable_from!));
  });

  it('restores to a timestamp between two writes: the first is there, the second is not', async () => {
    const port = await freePort();
    const dataDir = path.join(pg.root, `restore-${port}`);
    const r = await pitrRestore(s, { dataDir, target, port, start: true, socketDir: path.join(pg.root, 'sock') });
    expect(r.recovered_ms).not.toBeNull();
    expect(await labelsAt(dataDir, port)).toEqual(['first']);
  });

  it('restores from repo2 alone (the cross-region copy) with repo1 gone', async () => {
    moveRepoAside(s, 1);
    const port = await freePort();
    const dataDir = path.join(pg.root, `restore2-${port}`);
    await pitrRestore(s, { dataDir, target, repo: 2, port, start: true, socketDir: path.join(pg.root, 'sock') });
    expect(await labelsAt(dataDir, port)).toEqual(['first']);
  });
});
