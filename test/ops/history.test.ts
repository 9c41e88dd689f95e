// The operations page's last 24 hours against the real PostgreSQL and Redis: the api's own
// figures sampled into metric_samples as monitoring_user, the queues' counts from BullMQ, and
// /ops/history and /ops/queues for super admins only.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, setWorldPasswords, tokensFor, type WorldApp } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';
import { buildWorld } from '../helpers/fixtures.js';
import { TEST_REDIS_URL } from '../helpers/env.js';
import { opsRoutes } from '../../src/http/routes/ops/routes.js';
import { createPool, type Sql } from '../../src/db/pool.js';
import { DEFAULT_OPS_CONFIG } from '../../src/ops/types.js';
import { metrics } from '../../src/ops/monitoring/metrics.js';
import { ApiSampler, p95Between, type QueueReader } from '../../src/ops/monitoring/timeseries.js';
import { createQueueConnection } from '../../src/queue/connection.js';
import { createProducers, QUEUE_NAMES, type Producers } from '../../src/queue/producers.js';

let h: WorldApp;
let monitorSql: Sql;
let connection: Redis;
let producers: Producers;
let queues: QueueReader;

beforeAll(async () => {
  connection = createQueueConnection(TEST_REDIS_URL, 'ops-history-test');
  producers = createProducers(connection, `{accunode-t-${randomBytes(4).toString('hex')}}`);
  queues = () => Promise.all(QUEUE_NAMES.map(async (q) => ({ queue: q, counts: await producers.queue(q).getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed'), workers: await producers.queue(q).getWorkers().then((w) => w.length) })));
  const db = await createTestDatabase();
  const w = await buildWorld(db.adminSql);
  await setWorldPasswords(db, w);
  monitorSql = createPool(db.urlAs('monitoring_user'), { max: 2 });
  const t = await createTestApp(db, {
    apiPlugins: [async (api) => {
      await api.register(opsRoutes, { deps: { sql: db.appSql, redis: connection, monitor: { sql: monitorSql, redis: connection, config: DEFAULT_OPS_CONFIG }, readReplicas: 0, queues, sampleIntervalMs: 0 } });
    }],
  });
  const tok = await tokensFor(t, ['super', 'taA']);
  h = {
    db, w, t, tok,
    api: (method, url, who) => t.request({ method: method as 'GET', url: `/api/v1${url}`, token: tok[who] }),
    close: async () => {
      await t.close();
      await db.drop();
    },
  };
});
afterAll(async () => {
  await producers?.queue('bulk').obliterate({ force: true }).catch(() => {});
  await producers?.close();
  await connection?.quit();
  await h?.close().catch(() => {});
  await monitorSql?.end({ timeout: 2 });
});

describe('operations over time', () => {
  it('p95 between two readings is the bucket bound 95 % of the new requests fall under', () => {
    const a = new Map([[0.01, 10], [0.1, 10], [1, 10], [Infinity, 10]]);
    const b = new Map([[0.01, 60], [0.1, 105], [1, 110], [Infinity, 110]]);
    expect(p95Between(a, b)).toBe(100); // 95 of 100 new requests took at most 0.1 s
    expect(p95Between(a, a)).toBeNull();
  });

  it('samples the api\'s requests, cache and queues into metric_samples, and /ops/history charts them with alarm transitions', async () => {
    await producers.enqueue('bulk.predict', { jobId: '00000000-0000-4000-8000-000000000001', userId: h.w.users.taA.id });
    const sampler = new ApiSampler({ sql: monitorSql, metrics, queues });
    expect(await sampler.sample()).toEqual([]); // the baseline
    for (let i = 0; i < 5; i++) expect((await h.api('GET', '/auth/me', 'taA')).statusCode).toBe(200);
    const rows = await sampler.sample();
    const by = new Map(rows.map((r) => [r.metric, r.value]));
    expect(by.get('api_requests_per_s')).toBeGreaterThan(0);
    expect(by.get('api_error_percent')).toBe(0);
    expect(by.get('api_latency_p95_ms')).toBeGreaterThan(0);
    expect(by.get('queue_waiting')).toBe(1);
    await h.db.adminSql`insert into alarm_transitions (name, from_state, to_state, value, threshold, reason, at) values ('db_cpu', 'OK', 'ALARM', 91, 80, 'cpu 91 %', now() at time zone 'utc')`;
    await h.db.adminSql`insert into metric_samples (metric, value, source, taken_at) values ('db_connections', 7, 'test', now() at time zone 'utc' - interval '25 hours')`;

    const res = await h.api('GET', '/ops/history', 'super');
    expect(res.statusCode, res.body).toBe(200);
    const hist = res.json() as { series: Record<string, Array<{ at: string; value: number }>>; alarms: Array<{ name: string; to_state: string }> };
    expect(hist.series.api_requests_per_s).toHaveLength(1);
    expect(hist.series.queue_waiting![0]!.value).toBe(1);
    expect(hist.series.db_connections).toBeUndefined(); // older than 24 h
    expect(hist.alarms).toEqual([expect.objectContaining({ name: 'db_cpu', to_state: 'ALARM' })]);
    expect((await h.api('GET', '/ops/history?hours=48', 'super')).json().series.db_connections).toHaveLength(1);
    expect((await h.api('GET', '/ops/history?hours=0', 'super')).statusCode).toBe(400);
    expect((await h.api('GET', '/ops/history', 'taA')).statusCode).toBe(403);
  });

  it('/ops/queues shows each queue\'s jobs and workers to super admins only', async () => {
    const res = await h.api('GET', '/ops/queues', 'super');
    expect(res.statusCode, res.body).toBe(200);
    const bulk = (res.json().queues as Array<{ queue: string; counts: Record<string, number>; workers: number }>).find((q) => q.queue === 'bulk')!;
    expect(bulk.counts.waiting).toBe(1);
    expect(bulk.workers).toBe(0);
    expect((await h.api('GET', '/ops/queues', 'taA')).statusCode).toBe(403);
  });
});
