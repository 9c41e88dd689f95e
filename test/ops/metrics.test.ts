// /metrics: a tiny Fastify app with the plugin; after traffic the named series are non-zero,
// and the database/Redis figures are read at most once per 15 s whatever the scrape rate.
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Sql } from '../../src/db/pool.js';
import { metricsPlugin } from '../../src/http/metrics.js';
import { createMetrics, createStatsCollector } from '../../src/ops/monitoring/metrics.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/env.js';

let db: TestDatabase;
let sql: Sql;
let redis: Redis;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = createPool(db.urlAs('monitoring_user'), { max: 1 });
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 2 });
});
afterAll(async () => {
  await sql?.end({ timeout: 2 });
  redis?.disconnect();
  await db?.drop();
});

function value(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(series + ' ') || l.startsWith(series + '{') && l.includes(series));
  if (!line) return null;
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}
function sample(text: string, prefix: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : null;
}

describe('/metrics', () => {
  it('after traffic the named series are non-zero', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let now = 1_000_000;
    const collector = createStatsCollector(m, {
      sql,
      redis: [{ instance: 'main', client: redis }],
      slowQueryMs: 1000,
      replicaLagLimitSeconds: 60,
      backupMaxAgeHours: 25,
      lastGoodBackup: async () => new Date('2025-01-01T03:30:00Z'),
      nowMs: () => now,
    });
    const app = Fastify();
    await app.register(metricsPlugin, { metrics: m, collector });
    app.get('/api/v1/companies/:id', async (req) => {
      const id = (req.params as { id: string }).id;
      if (id === 'limited') {
        m.rateLimitRejections.inc({ policy: 'default' });
        return {};
      }
      m.cacheMisses.inc({ family: 'company' });
      m.cacheHits.inc({ family: 'company' });
      const end = m.modelInference.startTimer({ model: 'annual' });
      end();
      return { id };
    });
    for (let i = 0; i < 5; i++) expect((await app.inject(`/api/v1/companies/c${i}`)).statusCode).toBe(200);
    await app.inject('/api/v1/companies/limited');
    await app.inject('/nowhere');
    m.queueDepth.set({ queue: 'bulk', state: 'waiting' }, 3);
    m.jobDuration.observe({ queue: 'bulk', job: 'predict', outcome: 'completed' }, 0.42);

    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    const t = res.body;
    // Route pattern, not the URL; unmatched requests share one label.
    expect(sample(t, 'accunode_http_request_duration_seconds_count{method="GET",route="/api/v1/companies/:id",status="200"}')).toBe(6);
    expect(sample(t, 'accunode_http_request_duration_seconds_count{method="GET",route="(unmatched)",status="404"}')).toBe(1);
    expect(t).not.toContain('route="/api/v1/companies/c1"');
    expect(sample(t, 'accunode_rate_limit_rejections_total{policy="default"}')).toBe(1);
    expect(sample(t, 'accunode_cache_hits_total{family="company"}')).toBe(5);
    expect(sample(t, 'accunode_cache_misses_total{family="company"}')).toBe(5);
    expect(sample(t, 'accunode_queue_depth{queue="bulk",state="waiting"}')).toBe(3);
    expect(sample(t, 'accunode_job_duration_seconds_count{queue="bulk",job="predict",outcome="completed"}')).toBe(1);
    expect(sample(t, 'accunode_model_inference_seconds_count{model="annual"}')).toBe(5);
    // Database and Redis figures.
    expect(value(t, 'accunode_pg_connections_total')).toBeGreaterThan(0);
    expect(value(t, 'accunode_pg_max_connections')).toBeGreaterThan(0);
    expect(sample(t, `accunode_pg_database_size_bytes{database="${db.name}"}`)).toBeGreaterThan(0);
    expect(value(t, 'accunode_pg_transactions_total')).toBeGreaterThan(0);
    expect(sample(t, 'accunode_redis_up{instance="main"}')).toBe(1);
    expect(sample(t, 'accunode_redis_memory_used_bytes{instance="main"}')).toBeGreaterThan(0);
    expect(sample(t, 'accunode_redis_connected_clients{instance="main"}')).toBeGreaterThan(0);
    expect(sample(t, 'accunode_redis_cpu_seconds_total{instance="main"}')).toBeGreaterThan(0);
    expect(sample(t, 'accunode_backup_last_success_timestamp_seconds{source="backups"}')).toBe(Date.parse('2025-01-01T03:30:00Z') / 1000);
    // pg_stat_statements is not preloaded on this cluster: the series is absent, not zero.
    expect(t).not.toMatch(/^accunode_pg_slow_statement_calls/m);
    expect(t).not.toMatch(/^accunode_db_cpu_percent/m);

    // Scrapes within 15 s reuse the reading; after 15 s one more collection.
    await Promise.all([app.inject('/metrics'), app.inject('/metrics'), app.inject('/metrics')]);
    expect(collector.collections()).toBe(1);
    now += 15_000;
    await app.inject('/metrics');
    expect(collector.collections()).toBe(2);
    await app.close();
  });
});
