// The commands themselves (accunode alarms / maintenance / diagnose / db check-config), run as a
// process against a test database and a scratch Redis, as an operator would.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { TEST_ROLE_PASSWORD } from '../helpers/env.js';
import { startScratchRedis, type ScratchRedis } from './servers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
let db: TestDatabase;
let redis: ScratchRedis;
let dataDir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  // maxmemory 1mb: an empty Redis already uses ~90 % of it, so the memory alarm fires.
  redis = await startScratchRedis(['--maxmemory', '1mb', '--maxmemory-policy', 'noeviction']);
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'accunode-ops-cli-'));
});
afterAll(async () => {
  await redis?.stop();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/entrypoints/cli.ts'), ...args], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        // Under `npm run test:tls` the servers' CA must be trusted by the child too.
        ...(process.env.NODE_EXTRA_CA_CERTS ? { NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS } : {}),
        DATABASE_ADMIN_URL: db.adminUrl,
        MONITORING_USER_PASSWORD: TEST_ROLE_PASSWORD,
        REDIS_URL: redis.url,
        ACCUNODE_DATA_DIR: dataDir,
        LOG_LEVEL: 'error',
      },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('accunode operations commands', () => {
  it('alarms --json exits 2 while an alarm fires and names it', async () => {
    const r = await cli(['alarms', '--json']);
    expect(r.code, r.stderr).toBe(2);
    const e = JSON.parse(r.stdout);
    expect(e.firing).toEqual(['AccuNode-Redis-HighMemory']);
    expect(e.alarms.find((a: { name: string }) => a.name === 'AccuNode-DB-SlowQueries').reason).toMatch(/shared_preload_libraries/);
    expect(r.stderr).not.toMatch(/monitoring_user could not log in/);
    const table = await cli(['alarms', '--history']);
    expect(table.stdout).toMatch(/AccuNode-Redis-HighMemory\s+-\s+ALARM/);
  }, 60_000);

  it('maintenance run weekly --dry-run, then history; diagnose and db check-config print tables', async () => {
    const [m, d, c] = await Promise.all([cli(['maintenance', 'run', 'weekly', '--dry-run', '--json']), cli(['diagnose']), cli(['db', 'check-config', '--json'])]);
    expect(m.code, m.stderr).toBe(0);
    expect(JSON.parse(m.stdout)).toMatchObject({ kind: 'weekly', dry_run: true, outcome: 'succeeded' });
    const h = await cli(['maintenance', 'history', '--json']);
    expect(JSON.parse(h.stdout)[0]).toMatchObject({ kind: 'weekly', dry_run: true, outcome: 'succeeded' });
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/UNAVAILABLE: pg_stat_statements is not in shared_preload_libraries/);
    expect(d.stdout).toMatch(/To enable: add it to shared_preload_libraries/);
    expect(d.stdout).toMatch(/statistics read as monitoring_user/);
    // The shared test cluster is not configured from the profile: differences, exit code 1.
    expect(c.code).toBe(1);
    const diffs = JSON.parse(c.stdout).differences as Array<{ parameter: string }>;
    expect(diffs.map((x) => x.parameter)).toContain('shared_preload_libraries');
  }, 60_000);
});
