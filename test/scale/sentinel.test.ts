// Redis high availability (npm run test:scale): the queue/session Redis as a replication group
// (one primary, two replicas, AOF on every node) watched by three Sentinels (Debian package
// redis-sentinel), and a real `accunode api` + `accunode worker` reaching it only through the
// Sentinels (REDIS_SENTINELS / REDIS_SENTINEL_NAME, no REDIS_URL). The primary is SIGKILLed under
// load: no session is lost, every acknowledged prediction and bulk job is there afterwards, and
// neither process restarts. Prints the failover time. Loopback only.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRows, toCsv } from '../bulk/helpers.js';
import { freePort } from '../ops/servers.js';
import { AofRedis, deploymentEnv, login, lostPredictions, sleep, startDatabase, startLoad, startRole, uploadBulk, waitFor, waitJobs, type Cluster, type RoleProcess } from './harness.js';

const NAME = 'accunode';
let db: Cluster;
let nodes: AofRedis[] = [];
const sentinels: Array<{ port: number; child: ChildProcess; dir: string }> = [];
let api: RoleProcess;
let worker: RoleProcess;
const figures: Record<string, unknown> = {};

async function startSentinel(primaryPort: number): Promise<{ port: number; child: ChildProcess; dir: string }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-sentinel-'));
  const conf = path.join(dir, 'sentinel.conf');
  writeFileSync(conf, [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir ${dir}`,
    `sentinel monitor ${NAME} 127.0.0.1 ${primaryPort} 2`,
    `sentinel down-after-milliseconds ${NAME} 1000`,
    `sentinel failover-timeout ${NAME} 10000`,
    `sentinel parallel-syncs ${NAME} 1`,
    '',
  ].join('\n'));
  const child = spawn('redis-sentinel', [conf], { stdio: 'ignore' });
  await waitFor(async () => {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => {});
    try {
      await c.connect();
      return (await c.ping()) === 'PONG';
    } finally {
      c.disconnect();
    }
  }, 10_000, `sentinel on ${port}`, 50);
  return { port, child, dir };
}

async function sentinelSays(port: number, ...args: string[]): Promise<unknown> {
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  c.on('error', () => {});
  try {
    await c.connect();
    return await c.call('SENTINEL', ...args);
  } finally {
    c.disconnect();
  }
}

async function masterPort(): Promise<number | null> {
  for (const s of sentinels) {
    const r = (await sentinelSays(s.port, 'get-master-addr-by-name', NAME).catch(() => null)) as string[] | null;
    if (r) return Number(r[1]);
  }
  return null;
}

beforeAll(async () => {
  db = await startDatabase();
  const primary = await AofRedis.start();
  const replicas = await Promise.all([AofRedis.start(['--replicaof', '127.0.0.1', String(primary.port)]), AofRedis.start(['--replicaof', '127.0.0.1', String(primary.port)])]);
  nodes = [primary, ...replicas];
  for (let i = 0; i < 3; i++) sentinels.push(await startSentinel(primary.port));
  // Every Sentinel knows both replicas and the two other Sentinels before the app starts.
  await waitFor(async () => {
    for (const s of sentinels) {
      const m = (await sentinelSays(s.port, 'master', NAME)) as string[];
      const f = Object.fromEntries(m.flatMap((v, i) => (i % 2 === 0 ? [[v, m[i + 1]]] : [])));
      if (f['num-slaves'] !== '2' || f['num-other-sentinels'] !== '2') return false;
    }
    return true;
  }, 30_000, 'sentinels to discover replicas and each other', 200);
  const env = deploymentEnv(db, '', {
    REDIS_SENTINELS: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
    REDIS_SENTINEL_NAME: NAME,
    WORKER_QUEUES: 'bulk',
    BULK_CHUNK_ROWS: '100',
  });
  api = await startRole('api', env);
  worker = await startRole('worker', env);
}, 180_000);

afterAll(async () => {
  console.log('redis sentinel failover:', JSON.stringify(figures, null, 2));
  await Promise.all([api, worker].filter(Boolean).map((p) => p.stop()));
  for (const s of sentinels) {
    s.child.kill('SIGKILL');
    rmSync(s.dir, { recursive: true, force: true });
  }
  await Promise.all(nodes.map((n) => n.destroy()));
  await db?.close();
});

describe('Redis through Sentinel: primary killed under load', () => {
  it('fails over with no session, prediction or acknowledged job lost and no process restart', async () => {
    const pids = [api.child.pid, worker.child.pid];
    const token = await login(api.base, 'oaA1');
    const jobIds: string[] = [];
    let bulkRefused = 0;
    let n = 0;
    const csv = () => toCsv('annual', makeRows('annual', 50, { seed: 9000 + n, symbolPrefix: `F${n++}Q` }));
    // Bulk uploads every 150 ms all along (each 202 is an acknowledged job), and the mixed load.
    let uploading = true;
    const uploads = (async () => {
      while (uploading) {
        const id = await uploadBulk(api.base, token, csv());
        if (id) jobIds.push(id);
        else bulkRefused++;
        await sleep(150);
      }
    })();
    const load = startLoad({ bases: [api.base], token, concurrency: 6, maxSeconds: 90, symbolPrefix: 'SN' });
    await sleep(4000);

    const oldPort = await masterPort();
    expect(oldPort).toBe(nodes[0]!.port);
    const before = { acknowledged: load.report.acknowledged.length, jobs: jobIds.length };
    const tKill = Date.now();
    await nodes[0]!.stop('SIGKILL');
    // Failover seen by the Sentinels, then by the app (a bulk upload acknowledged again).
    const newPort = await waitFor(async () => {
      const p = await masterPort();
      return p && p !== oldPort ? p : null;
    }, 60_000, 'a new primary', 50);
    const tSwitch = Date.now();
    const jobsAtSwitch = jobIds.length;
    await waitFor(async () => jobIds.length > jobsAtSwitch, 60_000, 'a bulk upload acknowledged after the failover', 50);
    const tApp = Date.now();
    await sleep(4000);
    uploading = false;
    await uploads;
    const report = await load.stop();

    // Everything acknowledged is there: predictions in PostgreSQL, and every acknowledged bulk
    // job ran (a job lost from Redis would stay "queued" and time out here).
    const lost = await lostPredictions(db.adminSql, report.acknowledged);
    const jobs = await waitJobs(db.adminSql, jobIds, 120_000);
    const me = await fetch(`${api.base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    const probe = new Redis({ port: newPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    const info = await probe.info('replication').catch(() => '');
    probe.disconnect();

    Object.assign(figures, {
      topology: '1 primary + 2 replicas (AOF everysec), 3 sentinels (quorum 2, down-after 1000 ms)',
      old_primary_port: oldPort,
      new_primary_port: newPort,
      failover_ms_sentinel: tSwitch - tKill,
      failover_ms_app_acknowledges_again: tApp - tKill,
      load: { seconds: report.seconds, requests: report.requests, ok: report.ok, errors: report.errors, session_lost: report.sessionLost },
      predictions: { acknowledged: report.acknowledged.length, before_kill: before.acknowledged, lost },
      bulk_jobs: { acknowledged: jobIds.length, before_kill: before.jobs, refused_during_failover: bulkRefused, statuses: countBy(jobs.map((j) => j.status)), rows_per_job: [...new Set(jobs.map((j) => j.rows_succeeded))] },
      new_primary_replicas: /connected_slaves:(\d+)/.exec(info)?.[1],
      session_after_failover: me.status,
      processes_restarted: [api.child.pid, worker.child.pid].some((p, i) => p !== pids[i]) || api.child.exitCode !== null || worker.child.exitCode !== null,
    });
    expect(report.sessionLost).toBe(0);
    expect(me.status).toBe(200);
    expect(lost).toBe(0);
    expect(jobs.every((j) => j.status === 'completed' && j.rows_succeeded === 50)).toBe(true);
    expect(api.child.exitCode).toBeNull();
    expect(worker.child.exitCode).toBeNull();
    expect(report.acknowledged.length).toBeGreaterThan(before.acknowledged);
  }, 240_000);
});

function countBy(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
