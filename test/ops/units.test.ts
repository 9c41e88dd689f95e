// Pure rules of the operations feature: RAM sizing, profiles on disk, slow-call deltas,
// scaling triggers, Prometheus rules (promtool) against the alarm list.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALARM_NAMES } from '../../src/ops/monitoring/alarms/definitions.js';
import { slowCallsBetween } from '../../src/ops/monitoring/pg.js';
import {
  SPEC_RAM_BYTES,
  SPEC_REDIS_RAM_BYTES,
  parseConf,
  renderPostgresConf,
  renderRedisConf,
  sizePostgres,
  toBase,
} from '../../src/ops/local/profiles.js';
import { recommendScaling, type Sample } from '../../src/ops/monitoring/scaling.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const GB = 1024 ** 3;

describe('RAM sizing of the PostgreSQL profile', () => {
  it('32 GB gives the spec: shared_buffers 8GB, effective_cache_size 24GB', () => {
    const s = sizePostgres(32 * GB);
    expect(s.shared_buffers).toBe('8GB');
    expect(s.effective_cache_size).toBe('24GB');
    expect(s.maintenance_work_mem).toBe('2GB');
    expect(s.work_mem).toBe('64MB');
    expect(s.wal_buffers).toBe('16MB');
  });
  it('scales with RAM (4 GB dev instance, 64 GB scale-up size)', () => {
    expect(sizePostgres(4 * GB)).toMatchObject({ shared_buffers: '1GB', effective_cache_size: '3GB', maintenance_work_mem: '256MB', work_mem: '8MB' });
    expect(sizePostgres(64 * GB)).toMatchObject({ shared_buffers: '16GB', effective_cache_size: '48GB', maintenance_work_mem: '2GB', work_mem: '128MB' });
    expect(() => sizePostgres(100)).toThrow(RangeError);
  });
  it('the committed profiles are the rendered ones (32 GB database, 16.88 GB Redis node)', () => {
    expect(readFileSync(path.join(ROOT, 'ops/postgres/postgresql.conf'), 'utf8')).toBe(renderPostgresConf(SPEC_RAM_BYTES));
    expect(readFileSync(path.join(ROOT, 'ops/redis/cache.conf'), 'utf8')).toBe(renderRedisConf('cache', SPEC_REDIS_RAM_BYTES));
    expect(readFileSync(path.join(ROOT, 'ops/redis/queue.conf'), 'utf8')).toBe(renderRedisConf('queue', SPEC_REDIS_RAM_BYTES));
    const pg = parseConf(readFileSync(path.join(ROOT, 'ops/postgres/postgresql.conf'), 'utf8'), 'pg');
    expect(pg.get('shared_preload_libraries')).toBe('pg_stat_statements,pg_cron');
    expect(pg.get('log_statement')).toBe('mod');
    expect(pg.get('password_encryption')).toBe('scram-sha-256');
    const cache = parseConf(readFileSync(path.join(ROOT, 'ops/redis/cache.conf'), 'utf8'), 'redis');
    expect(cache.get('maxmemory-policy')).toBe('allkeys-lru');
    expect(cache.get('save')).toBe('');
    const queue = parseConf(readFileSync(path.join(ROOT, 'ops/redis/queue.conf'), 'utf8'), 'redis');
    expect(queue.get('maxmemory-policy')).toBe('noeviction');
    expect(queue.get('appendonly')).toBe('yes');
  });
  it('converts units the way pg_settings reports them', () => {
    expect(toBase('8GB', '8kB')).toBe(8 * GB);
    expect(toBase('1048576', '8kB')).toBe(8 * GB);
    expect(toBase('10min', 's')).toBe(600_000);
    expect(toBase('600', 's')).toBe(600_000);
    expect(toBase('1.1', null)).toBe(1.1);
  });
});

describe('slow calls from pg_stat_statements deltas', () => {
  const base = { a: [100, 5000] as [number, number], b: [10, 50] as [number, number] };
  it('11 calls of 1.1 s count 11; 9 count 9; fast statements none', () => {
    expect(slowCallsBetween(base, { ...base, s: [11, 11 * 1100] }, 1000)).toEqual({ slowCalls: 11, statements: 1 });
    expect(slowCallsBetween(base, { ...base, s: [9, 9 * 1100] }, 1000).slowCalls).toBe(9);
    expect(slowCallsBetween(base, { a: [200, 10000], b: [10, 50] }, 1000).slowCalls).toBe(0);
  });
  it('averages within the period: a once-slow statement now fast is not counted', () => {
    // Before: 1 call of 60 s (lifetime mean 60 s). Period: 100 calls of 1 ms.
    expect(slowCallsBetween({ x: [1, 60_000] }, { x: [101, 60_100] }, 1000).slowCalls).toBe(0);
    // A reset (counters went down) takes the current counters as the period's.
    expect(slowCallsBetween({ x: [500, 10] }, { x: [12, 12 * 1500] }, 1000).slowCalls).toBe(12);
  });
});

describe('scaling triggers', () => {
  const now = new Date('2025-01-01T12:00:00Z');
  const series = (metric: string, values: Array<number | null>, source = 'test'): Sample[] =>
    values.map((v, i) => ({ metric, value: v, source, taken_at: new Date(now.getTime() - (values.length - 1 - i) * 5 * 60_000) }));
  const quiet = (over: Partial<Record<string, number>> = {}) => [
    ...series('db_cpu_percent', Array(7).fill(over.cpu ?? 50)),
    ...series('host_memory_percent', Array(7).fill(over.mem ?? 60)),
    ...series('db_connections', Array(7).fill(over.conn ?? 100)),
    ...series('db_max_connections', Array(7).fill(200)),
    ...series('db_read_iops', Array(7).fill(over.iops ?? 3000)),
    ...series('db_read_latency_ms', Array(7).fill(over.lat ?? 20)),
    ...series('db_replicas', Array(7).fill(over.replicas ?? 1)),
  ];
  it('nothing crosses: no change', () => {
    const r = recommendScaling(quiet(), { now });
    expect(r.actions).toEqual([]);
    expect(r.summary).toMatch(/no change/);
  });
  it('CPU > 80 % for two periods: scale up (and the primary CPU > 70 % adds a replica)', () => {
    const r = recommendScaling(quiet({ cpu: 85 }), { now });
    expect(r.actions).toEqual(['scale_up', 'add_read_replica']);
    expect(r.figures.find((f) => f.trigger === 'scale up' && f.figure === 'CPU %')).toMatchObject({ average: 85, met: true, source: 'test' });
  });
  it('memory > 85 % scales up; connections > 160 of 200 scale up', () => {
    expect(recommendScaling(quiet({ mem: 90 }), { now }).actions).toEqual(['scale_up']);
    expect(recommendScaling(quiet({ conn: 170 }), { now }).actions).toEqual(['scale_up']);
    expect(recommendScaling(quiet({ conn: 150 }), { now }).actions).toEqual([]);
  });
  it('30 minutes under CPU 30 %, memory 40 %, connections 50: scale down', () => {
    expect(recommendScaling(quiet({ cpu: 10, mem: 30, conn: 20 }), { now }).actions).toEqual(['scale_down']);
    // One figure above its bound keeps the size.
    expect(recommendScaling(quiet({ cpu: 10, mem: 45, conn: 20 }), { now }).actions).toEqual([]);
  });
  it('read IOPS > 8000 or latency > 50 ms adds a read replica, up to 3', () => {
    expect(recommendScaling(quiet({ iops: 9000 }), { now }).actions).toEqual(['add_read_replica']);
    expect(recommendScaling(quiet({ lat: 60 }), { now }).actions).toEqual(['add_read_replica']);
    const full = recommendScaling(quiet({ lat: 60, replicas: 3 }), { now });
    expect(full.actions).toEqual([]);
    expect(full.summary).toMatch(/maximum of 3/);
  });
  it('low read load with two replicas removes one; with one it stays', () => {
    expect(recommendScaling(quiet({ iops: 500, lat: 5, replicas: 2 }), { now }).actions).toEqual(['remove_read_replica']);
    expect(recommendScaling(quiet({ iops: 500, lat: 5, replicas: 1 }), { now }).actions).toEqual([]);
  });
  it('an unmeasured figure is undecidable, never assumed', () => {
    const s = [...series('db_cpu_percent', [null, null, null], 'unavailable: the database host is not this machine'), ...series('db_connections', [10, 10, 10])];
    const r = recommendScaling(s, { now });
    const cpu = r.figures.find((f) => f.trigger === 'scale up' && f.figure === 'CPU %');
    expect(cpu).toMatchObject({ met: null, average: null, source: 'unavailable: the database host is not this machine' });
    expect(r.summary).toMatch(/undecidable/);
  });
});

describe('Prometheus rules', () => {
  const rules = path.join(ROOT, 'ops/prometheus/alerts.yml');
  it('promtool check rules accepts ops/prometheus/alerts.yml', () => {
    const out = execFileSync(path.join(ROOT, 'scripts/promtool.sh'), ['check', 'rules', rules], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS: 9 rules found/);
  }, 120_000);
  it('holds the same alarms as the code', () => {
    const names = [...readFileSync(rules, 'utf8').matchAll(/^\s*- alert:\s*(\S+)\s*$/gm)].map((m) => m[1]);
    expect([...names].sort()).toEqual([...ALARM_NAMES].sort());
  });
});
