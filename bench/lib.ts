// Shared benchmark plumbing: a migrated scratch database, autocannon runs, result rows.
import autocannon from 'autocannon';
import setupTemplate from '../test/helpers/global-setup.js';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db.js';

export interface BenchResult {
  scenario: string;
  figure: number;
  unit: string;
  baseline: number;
  ratio: number;
  detail?: Record<string, number>;
}

export async function benchDatabase(): Promise<TestDatabase> {
  await setupTemplate();
  return createTestDatabase({ poolSize: 20 });
}

export interface LoadFigures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

export async function load(url: string, opts: { connections?: number; seconds?: number; headers?: Record<string, string>; method?: string; body?: string } = {}): Promise<LoadFigures> {
  const r = await autocannon({
    url,
    connections: opts.connections ?? 50,
    duration: opts.seconds ?? 5,
    headers: opts.headers ?? {},
    method: (opts.method ?? 'GET') as 'GET',
    ...(opts.body ? { body: opts.body } : {}),
  });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

export function printResults(results: BenchResult[]): void {
  for (const r of results) {
    const extra = r.detail ? ' ' + Object.entries(r.detail).map(([k, v]) => `${k}=${v}`).join(' ') : '';
    console.log(`${r.scenario}: ${r.figure.toFixed(0)} ${r.unit} vs baseline ${r.baseline.toFixed(0)} → ratio ${r.ratio.toFixed(3)}${extra}`);
  }
}
