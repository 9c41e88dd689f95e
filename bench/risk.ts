/**
 * Risk engine throughput, single-threaded: predictions per second for annual and quarterly models,
 * against a baseline measured in the same run (a bare 5-weight dot product + sigmoid over the same
 * inputs), so the ratio is comparable across machines.
 *
 *   npx tsx bench/risk.ts
 */
import { fileURLToPath } from 'node:url';
import { generateReferenceData, type AnnualRatios, type QuarterlyRatios, type Dataset } from '../src/risk/index.js';
import { loadModels } from '../src/services/model-store.js';

import type { BenchResult } from './lib.js';

export type { BenchResult };
export const knobs = ['BENCH_RISK_MS'];
export const about =
  'risk: model evaluations per second of CPU time on one thread (per core) over reference-data inputs vs a bare 5-weight dot product + sigmoid over the same inputs, same run.';

function rows<T>(ds: Dataset): T[] {
  const out: T[] = [];
  for (let i = 0; i < ds.y.length; i++) {
    const r: Record<string, number | null> = {};
    ds.fields.forEach((f, j) => {
      const v = ds.columns[j]![i]!;
      r[f] = Number.isNaN(v) ? null : v;
    });
    out.push(r as T);
  }
  return out;
}

/**
 * Runs `fn` over the inputs repeatedly for ~`ms` milliseconds; returns operations per second of
 * this thread's CPU time ("per core"), so another process on the machine does not halve the figure.
 */
function opsPerSecond<T>(inputs: readonly T[], fn: (x: T) => number, ms: number): number {
  let sink = 0;
  // Warm-up so the JIT has optimised the hot path before timing.
  for (let i = 0; i < Math.min(inputs.length, 20000); i++) sink += fn(inputs[i]!);
  let ops = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < inputs.length; i++) sink += fn(inputs[i]!);
    ops += inputs.length;
    now = process.hrtime.bigint();
  }
  const used = process.cpuUsage(cpu0);
  const secs = (used.user + used.system) / 1e6;
  if (sink === 42.4242) console.log('');
  return ops / secs;
}

function baselineFn(): (r: AnnualRatios) => number {
  const w = [0.01, 0.2, -0.05, -0.1, -0.08];
  return (r) => {
    const z =
      -4 +
      w[0]! * (r.long_term_debt_to_total_capital ?? 0) +
      w[1]! * (r.total_debt_to_ebitda ?? 0) +
      w[2]! * (r.net_income_margin ?? 0) +
      w[3]! * (r.ebit_to_interest_expense ?? 0) +
      w[4]! * (r.return_on_assets ?? 0);
    return 1 / (1 + Math.exp(-z));
  };
}

export async function run(opts: { ms?: number; rows?: number } = {}): Promise<BenchResult[]> {
  const ms = opts.ms ?? Number(process.env.BENCH_RISK_MS ?? 1500);
  const n = opts.rows ?? 20000;
  const engine = await loadModels();
  const annual = rows<AnnualRatios>(generateReferenceData('annual', n, 11));
  const quarterly = rows<QuarterlyRatios>(generateReferenceData('quarterly', n, 12));
  const base = baselineFn();
  const baseOps = opsPerSecond(annual, base, ms);
  const annualOps = opsPerSecond(annual, (r) => engine.predictAnnual(r).probability, ms);
  const quarterlyOps = opsPerSecond(quarterly, (r) => engine.predictQuarterly(r).ensemble_probability, ms);
  const explainOps = opsPerSecond(quarterly.slice(0, 2000), (r) => engine.predictQuarterly(r, { explain: true }).ensemble_probability, ms / 2);
  const mk = (scenario: string, figure: number): BenchResult => ({
    scenario,
    figure: Math.round(figure),
    unit: 'predictions/s',
    baseline: Math.round(baseOps),
    baseline_label: 'bare dot product + sigmoid',
    ratio: Math.round((figure / baseOps) * 1e4) / 1e4,
    detail: { ns_per_prediction: Math.round(1e9 / figure) },
  });
  return [
    mk('risk.annual.predict', annualOps),
    mk('risk.quarterly.predict', quarterlyOps),
    mk('risk.quarterly.predict_explain', explainOps),
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const results = await run();
  for (const r of results) {
    console.log(
      `${r.scenario.padEnd(32)} ${r.figure.toLocaleString('en-US').padStart(12)} ${r.unit}  ` +
        `${(1e9 / r.figure).toFixed(0).padStart(7)} ns/prediction  baseline ${r.baseline.toLocaleString('en-US')}/s  ratio ${r.ratio}`,
    );
  }
}
