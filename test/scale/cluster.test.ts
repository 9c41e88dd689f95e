// Redis Cluster (npm run test:scale): three local masters (AOF, cluster bus on its own port via
// --cluster-port, so any free port works), and a real `accunode api` + `accunode worker`
// connected with REDIS_CLUSTER_NODES. Sessions, rate limits (@fastify/rate-limit's Lua script,
// one key per call), the cache (including multi-key invalidations split by slot) and a bulk job
// through BullMQ (the {accunode} hash-tag prefix keeps each queue in one slot) all work.
import { spawn } from 'node:child_process';
import { Redis, Cluster as RedisCluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRows, toCsv } from '../bulk/helpers.js';
import { freePort } from '../ops/servers.js';
import { connectRedis } from '../../src/redis/topology.js';
import { keySlot } from '../../src/redis/cluster-safe.js';
import { AofRedis, deploymentEnv, login, startDatabase, startRole, uploadBulk, waitFor, waitJobs, type Cluster, type RoleProcess } from './harness.js';

const LIMIT = 40;
let db: Cluster;
const nodes: AofRedis[] = [];
let api: RoleProcess;
let worker: RoleProcess;
let client: RedisCluster;
const figures: Record<string, unknown> = {};

beforeAll(async () => {
  db = await startDatabase();
  for (let i = 0; i < 3; i++) {
    nodes.push(await AofRedis.start(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', '--cluster-port', String(await freePort())]));
  }
  await new Promise<void>((resolve, reject) => {
    const c = spawn('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    c.stderr!.on('data', (d) => (out += d));
    c.once('exit', (code) => (code === 0 && /All 16384 slots covered/.test(out) ? resolve() : reject(new Error(`redis-cli --cluster create: ${out}`))));
  });
  await waitFor(async () => {
    for (const n of nodes) {
      const c = new Redis(n.url, { maxRetriesPerRequest: 1 });
      const info = await c.cluster('INFO').finally(() => c.disconnect());
      if (!/cluster_state:ok/.test(String(info))) return false;
    }
    return true;
  }, 30_000, 'cluster_state:ok on every node', 200);
  client = new RedisCluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
  const env = deploymentEnv(db, '', {
    REDIS_CLUSTER_NODES: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    RATE_LIMIT_DEFAULT: String(LIMIT),
    WORKER_QUEUES: 'bulk',
    BULK_CHUNK_ROWS: '100',
  });
  api = await startRole('api', env);
  worker = await startRole('worker', env);
}, 180_000);

afterAll(async () => {
  console.log('redis cluster:', JSON.stringify(figures, null, 2));
  await Promise.all([api, worker].filter(Boolean).map((p) => p.stop()));
  client?.disconnect();
  await Promise.all(nodes.map((n) => n.destroy()));
  await db?.close();
});

/** Keys matching a pattern on every master. */
async function keysOnCluster(pattern: string): Promise<Array<{ node: number; key: string }>> {
  const out: Array<{ node: number; key: string }> = [];
  for (const [i, n] of nodes.entries()) {
    const c = new Redis(n.url, { maxRetriesPerRequest: 1 });
    for (const key of await c.keys(pattern).finally(() => c.disconnect())) out.push({ node: i, key });
  }
  return out;
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

describe('the app on a Redis Cluster of three masters', () => {
  it('sessions: a login is stored in the cluster, used, and ended by logout', async () => {
    const token = await login(api.base, 'omA2');
    const me = await fetch(`${api.base}/api/v1/auth/me`, { headers: auth(token) });
    const sessions = await keysOnCluster('session:*');
    const out = await fetch(`${api.base}/api/v1/auth/logout`, { method: 'POST', headers: auth(token) });
    const after = await fetch(`${api.base}/api/v1/auth/me`, { headers: auth(token) });
    figures.sessions = { me: me.status, session_keys_on_nodes: [...new Set(sessions.map((s) => s.node))], logout: out.status, after_logout: after.status };
    expect(me.status).toBe(200);
    expect(sessions.length).toBeGreaterThan(0);
    expect(out.status).toBeLessThan(300);
    expect(after.status).toBe(401);
  });

  it(`rate limits: a limit of ${LIMIT} lets exactly ${LIMIT} through`, async () => {
    const token = await login(api.base, 'uA');
    const statuses = await Promise.all(
      Array.from({ length: LIMIT + 20 }, () => fetch(`${api.base}/api/v1/auth/me`, { headers: auth(token) }).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      })),
    );
    const ok = statuses.filter((s) => s === 200).length;
    const limited = statuses.filter((s) => s === 429).length;
    const counters = await keysOnCluster('rate_limit:*');
    figures.rate_limit = { limit: LIMIT, sent: statuses.length, ok, limited, counters_on_nodes: [...new Set(counters.map((c) => c.node))].length };
    expect(ok).toBe(LIMIT);
    expect(limited).toBe(20);
  });

  it('cache: a prediction read is cached in the cluster and an update is seen at once', async () => {
    const token = await login(api.base, 'oaA1');
    const headers = { ...auth(token), 'content-type': 'application/json' };
    const body = { company: { symbol: 'CLUS1', name: 'Cluster One' }, reporting_year: '2024', long_term_debt_to_total_capital: 30, total_debt_to_ebitda: 2, net_income_margin: 5, ebit_to_interest_expense: 4, return_on_assets: 3 };
    const created = await fetch(`${api.base}/api/v1/predictions/annual`, { method: 'POST', headers, body: JSON.stringify(body) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const r1 = await fetch(`${api.base}/api/v1/predictions/annual/${id}`, { headers });
    const r2 = await fetch(`${api.base}/api/v1/predictions/annual/${id}`, { headers });
    const cached = await client.exists(`cache:prediction:${id}`);
    const upd = await fetch(`${api.base}/api/v1/predictions/annual/${id}`, { method: 'PATCH', headers, body: JSON.stringify({ return_on_assets: -20 }) });
    const r3 = await fetch(`${api.base}/api/v1/predictions/annual/${id}`, { headers });
    const p3 = (await r3.json()) as Record<string, unknown>;
    const summary = await fetch(`${api.base}/api/v1/analytics/summary?period=year&type=annual`, { headers });
    figures.cache = { reads: [r1.status, r2.status], cached_key: cached, update: upd.status, read_after_update: r3.status, analytics_summary: summary.status };
    expect([r1.status, r2.status]).toEqual([200, 200]);
    expect(cached).toBe(1);
    expect(upd.status).toBeLessThan(300);
    expect(JSON.stringify(p3)).toContain('-20');
    expect(summary.status).toBe(200);
  });

  it('multi-key commands of the request path are split by slot (DEL, MGET, MULTI)', async () => {
    const r = connectRedis('redis://127.0.0.1', { maxRetriesPerRequest: 2 }, { topology: { sentinels: [], sentinelName: 'x', clusterNodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })) }, requestPath: true });
    try {
      const keys = Array.from({ length: 20 }, (_, i) => `cache:prediction:t${i}`);
      expect(new Set(keys.map(keySlot)).size).toBeGreaterThan(1);
      for (const k of keys) await r.set(k, k);
      expect(await r.mget(...keys)).toEqual(keys);
      expect(await r.del(...keys.slice(0, 10))).toBe(10);
      const m = r.multi();
      m.del(...keys.slice(10));
      m.incr('analytics:gen:all');
      m.incr('analytics:gen:system');
      const res = await m.exec();
      expect(res?.map(([err]) => err)).toEqual([null, null, null]);
      expect(res?.[0]?.[1]).toBe(10);
      expect(await r.exists(...keys)).toBe(0);
      // Our own slot computation agrees with the server's.
      for (const k of [...keys.slice(0, 3), '{accunode}:bulk:1']) expect(keySlot(k)).toBe(Number(await client.cluster('KEYSLOT', k)));
    } finally {
      r.disconnect();
    }
  });

  it('a bulk job runs through BullMQ on the cluster (hash-tagged queue keys in one slot)', async () => {
    const token = await login(api.base, 'oaA1');
    const id = await uploadBulk(api.base, token, toCsv('annual', makeRows('annual', 300, { seed: 77, symbolPrefix: 'CL' })));
    expect(id).toBeTruthy();
    const [job] = await waitJobs(db.adminSql, [id!], 120_000);
    const queueKeys = await keysOnCluster('{accunode}*');
    figures.bulk = { status: job?.status, rows: job?.rows_succeeded, attempts: job?.attempts, queue_keys: queueKeys.length, queue_key_nodes: [...new Set(queueKeys.map((k) => k.node))].length };
    expect(job).toMatchObject({ status: 'completed', rows_succeeded: 300, attempts: 1 });
    expect(new Set(queueKeys.map((k) => k.node)).size).toBe(1);
  }, 180_000);

  it('no process logged a cross-slot or deferred Redis operation', () => {
    const logs = api.output() + worker.output();
    figures.logs = { crossslot: (logs.match(/CROSSSLOT/g) ?? []).length, deferred_invalidations: (logs.match(/deferred until Redis|invalidation after a bulk\/maintenance write failed/g) ?? []).length };
    expect(logs).not.toMatch(/CROSSSLOT|deferred until Redis|invalidation after a bulk\/maintenance write failed|could not drop revoked session/);
  });
});
