/**
 * The operations page's last 24 hours. The 5-minute alarm evaluation already stores the database
 * and Redis figures in metric_samples; the api process adds what only it knows (request rate,
 * error rate and p95 latency from its prom-client histogram, the cache hit rate) and the queues'
 * state (BullMQ counts), as deltas over each interval, into the same table as monitoring_user.
 * opsHistory() reads it all back with the alarm transitions of the window.
 */
import { hostname } from 'node:os';
import type { Sql } from '../../db/pool.js';
import type { Logger } from '../../logging.js';
import type { AppMetrics } from './metrics.js';
import { addSamples, samplesInWindow, transitionsInWindow, type MetricSample } from '../../repositories/monitoring.js';

export interface QueueStatus {
  queue: string;
  counts: Record<string, number>;
  /** Workers connected to the queue (BullMQ CLIENT LIST), null when unknown. */
  workers: number | null;
}

export type QueueReader = () => Promise<QueueStatus[]>;

interface Reading {
  at: number;
  requests: number;
  errors: number;
  /** cumulative bucket counts by upper bound, summed over routes */
  buckets: Map<number, number>;
  hits: number;
  misses: number;
  completed: number | null;
  failed: number | null;
}

async function read(m: AppMetrics, queues?: QueueReader): Promise<{ reading: Reading; queues: QueueStatus[] | null }> {
  const h = await m.httpDuration.get();
  let requests = 0;
  let errors = 0;
  const buckets = new Map<number, number>();
  for (const v of h.values) {
    if (v.metricName?.endsWith('_count')) {
      requests += v.value;
      if (String(v.labels.status ?? '').startsWith('5')) errors += v.value;
    } else if (v.metricName?.endsWith('_bucket')) {
      const raw = (v.labels as Record<string, string | number | undefined>).le;
      const le = raw === '+Inf' ? Infinity : Number(raw);
      buckets.set(le, (buckets.get(le) ?? 0) + v.value);
    }
  }
  const sum = async (c: AppMetrics['cacheHits']) => (await c.get()).values.reduce((n, v) => n + v.value, 0);
  let q: QueueStatus[] | null = null;
  if (queues) q = await queues().catch(() => null);
  const total = (state: string) => (q ? q.reduce((n, s) => n + (s.counts[state] ?? 0), 0) : null);
  return {
    reading: { at: Date.now(), requests, errors, buckets, hits: await sum(m.cacheHits), misses: await sum(m.cacheMisses), completed: total('completed'), failed: total('failed') },
    queues: q,
  };
}

/** The p95 of the requests between two readings, in ms (the bucket bound it falls in). */
export function p95Between(a: Map<number, number>, b: Map<number, number>): number | null {
  const bounds = [...b.keys()].sort((x, y) => x - y);
  const total = (b.get(Infinity) ?? 0) - (a.get(Infinity) ?? 0);
  if (total <= 0) return null;
  for (const le of bounds) {
    if ((b.get(le) ?? 0) - (a.get(le) ?? 0) >= 0.95 * total) return le === Infinity ? null : le * 1000;
  }
  return null;
}

type Sample = MetricSample;

/** What happened between two readings, as metric_samples rows. */
function samplesBetween(prev: Reading, cur: Reading, queues: QueueStatus[] | null, source: string): Sample[] {
  const seconds = Math.max(1, (cur.at - prev.at) / 1000);
  const requests = cur.requests - prev.requests;
  const lookups = cur.hits - prev.hits + (cur.misses - prev.misses);
  const out: Sample[] = [
    { metric: 'api_requests_per_s', value: Math.round((requests / seconds) * 100) / 100, source },
    { metric: 'api_error_percent', value: requests > 0 ? Math.round(((cur.errors - prev.errors) / requests) * 10000) / 100 : null, source },
    { metric: 'api_latency_p95_ms', value: p95Between(prev.buckets, cur.buckets), source },
    { metric: 'app_cache_hit_percent', value: lookups > 0 ? Math.round(((cur.hits - prev.hits) / lookups) * 10000) / 100 : null, source },
  ];
  if (queues) {
    for (const state of ['waiting', 'active', 'delayed', 'failed']) out.push({ metric: `queue_${state}`, value: queues.reduce((n, s) => n + (s.counts[state] ?? 0), 0), source: 'BullMQ job counts, all queues' });
    // Completed jobs are kept 24 h then removed, so a drop is removal, not negative throughput.
    if (cur.completed !== null && prev.completed !== null) out.push({ metric: 'jobs_completed_per_min', value: Math.max(0, Math.round(((cur.completed - prev.completed) / seconds) * 60 * 100) / 100), source: 'BullMQ completed count delta' });
    if (cur.failed !== null && prev.failed !== null) out.push({ metric: 'jobs_failed_per_min', value: Math.max(0, Math.round(((cur.failed - prev.failed) / seconds) * 60 * 100) / 100), source: 'BullMQ failed count delta' });
  }
  return out;
}

/** Samples the api's own figures every `intervalMs` into metric_samples (monitoring_user may insert). */
export class ApiSampler {
  private timer: NodeJS.Timeout | null = null;
  private prev: Reading | null = null;
  private readonly source = `api ${hostname()}:${process.pid}`;

  constructor(private readonly d: { sql: Sql; metrics: AppMetrics; queues?: QueueReader; log?: Logger; intervalMs?: number }) {}

  /** One sample now (the first call only takes the baseline). Returns what was stored. */
  async sample(now = new Date()): Promise<Sample[]> {
    const { reading, queues } = await read(this.d.metrics, this.d.queues);
    const prev = this.prev;
    this.prev = reading;
    if (!prev) return [];
    const rows = samplesBetween(prev, reading, queues, this.source);
    await addSamples(this.d.sql, rows, now);
    return rows;
  }

  start(): this {
    void this.sample().catch(() => {});
    this.timer = setInterval(() => void this.sample().catch((err: Error) => this.d.log?.warn({ err: err.message }, 'api figures not sampled')), this.d.intervalMs ?? 5 * 60_000);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

interface OpsHistory {
  from: string;
  to: string;
  series: Record<string, Array<{ at: string; value: number | null }>>;
  alarms: Array<{ name: string; from_state: string | null; to_state: string; value: number | null; reason: string | null; at: string }>;
}

/** metric_samples and alarm transitions of the last `hours`, oldest first (the page's charts). */
export async function opsHistory(sql: Sql, hours = 24, now = new Date()): Promise<OpsHistory> {
  const from = new Date(now.getTime() - hours * 3600_000);
  const rows = await samplesInWindow(sql, from, now);
  const series: OpsHistory['series'] = {};
  for (const r of rows) (series[r.metric] ??= []).push({ at: new Date(r.taken_at).toISOString(), value: r.value === null ? null : Number(r.value) });
  const alarms = await transitionsInWindow(sql, from, now);
  return { from: from.toISOString(), to: now.toISOString(), series, alarms: alarms.map((a) => ({ ...a, at: new Date(a.at).toISOString() })) };
}
