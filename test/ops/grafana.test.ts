// ops/grafana/accunode.json names only metrics the app exports: every panel has a query, and every
// accunode_* series in it is one prom-client registers (histograms as _bucket/_sum/_count).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { metrics } from '../../src/ops/monitoring/metrics.js';

interface Panel { title: string; type: string; targets?: Array<{ expr?: string }> }
const dashboard = JSON.parse(readFileSync(new URL('../../ops/grafana/accunode.json', import.meta.url), 'utf8')) as { panels: Panel[]; uid: string };

async function exportedSeries(): Promise<Set<string>> {
  const out = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    out.add(m.name);
    if (String(m.type) === 'histogram' || String(m.type) === 'summary') for (const s of ['_bucket', '_sum', '_count']) out.add(m.name + s);
  }
  return out;
}

describe('the Grafana dashboard', () => {
  it('every panel queries metrics the app registers', async () => {
    const series = await exportedSeries();
    expect(series.has('accunode_http_request_duration_seconds_bucket')).toBe(true);
    expect(dashboard.panels.length).toBeGreaterThan(10);
    const unknown: string[] = [];
    for (const p of dashboard.panels) {
      const exprs = (p.targets ?? []).map((t) => t.expr ?? '');
      expect(exprs.length, `${p.title} has no query`).toBeGreaterThan(0);
      for (const e of exprs) {
        const names = e.match(/\baccunode_[a-z0-9_]+/g) ?? [];
        expect(names.length, `${p.title}: "${e}" names no accunode metric`).toBeGreaterThan(0);
        for (const n of names) if (!series.has(n)) unknown.push(`${p.title}: ${n}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it('charts what operators watch: connections, cache, Redis memory, queues, jobs, latency, errors', () => {
    const all = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')).join('\n');
    for (const m of ['accunode_pg_connections', 'accunode_pg_cache_hit_ratio', 'accunode_cache_hits_total', 'accunode_redis_memory_used_bytes', 'accunode_queue_depth',
      'accunode_job_duration_seconds_count', 'accunode_http_request_duration_seconds_bucket', 'status=~"5.."']) {
      expect(all, m).toContain(m);
    }
  });
});
