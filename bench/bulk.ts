/**
 * Bulk upload throughput, end to end: 100,000 annual rows from a CSV file on disk to every row
 * stored (parse, validate, predict, COPY into staging, upsert companies + predictions under
 * row-level security), against a raw COPY of the same precomputed prediction rows into the same
 * table, measured in the same run on the same database.
 *
 *   npx tsx bench/bulk.ts        (needs PostgreSQL: TEST_DATABASE_ADMIN_URL or 127.0.0.1:5432)
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createPool } from '../src/db/pool.js';
import { ANNUAL_FIELD_NAMES, generateReferenceData } from '../src/risk/index.js';
import { loadModels } from '../src/services/model-store.js';
import { computePrediction, requiredRatios } from '../src/services/prediction-compute.js';
import { createBulkJob } from '../src/services/bulk/submit.js';
import { runBulkJob } from '../src/services/bulk/pipeline.js';

import { benchDatabase, type BenchResult } from './lib.js';

export type { BenchResult };
export const knobs = ['BENCH_BULK_ROWS', 'BENCH_BULK_BIG_ROWS'];
export const about =
  'bulk: a CSV of N annual rows end to end (parse, validate, predict, COPY into staging, set-based upsert of companies and predictions under RLS) ' +
  'vs a raw COPY of the same precomputed prediction rows into the same table, same database, same run. ' +
  'Then a CSV of BENCH_BULK_BIG_ROWS rows run by a worker process of its own: its peak RSS (getrusage) and RSS sampled after each chunk, ' +
  'baseline = the same process idle after loading the models (flat means the peak stays near it whatever the file size).';

const N = Number(process.env.BENCH_BULK_ROWS ?? 100_000);
const BIG = Number(process.env.BENCH_BULK_BIG_ROWS ?? 1_000_000);

/** Streams a CSV of n annual rows to disk without holding the rows (100,000 generated at a time). */
async function writeBigCsv(file: string, n: number): Promise<{ refused: number }> {
  const needed = requiredRatios('annual');
  let refused = 0;
  const out = createWriteStream(file);
  const write = async (s: string) => {
    if (!out.write(s)) await once(out, 'drain');
  };
  await write(['company_symbol', 'company_name', 'sector', 'reporting_year', ...ANNUAL_FIELD_NAMES].join(',') + '\n');
  const step = 100_000;
  for (let start = 0; start < n; start += step) {
    const m = Math.min(step, n - start);
    const ds = generateReferenceData('annual', m, 1000 + start);
    let chunk = '';
    for (let i = 0; i < m; i++) {
      const c = Math.floor((start + i) / YEARS);
      chunk += `M${c},Memory Company ${c},Utilities,${2015 + ((start + i) % YEARS)}`;
      let present = 0;
      for (let j = 0; j < ANNUAL_FIELD_NAMES.length; j++) {
        const v = ds.columns[j]![i]!;
        if (!Number.isNaN(v)) present++;
        chunk += ',' + (Number.isNaN(v) ? '' : String(Math.round(v * 1e4) / 1e4));
      }
      if (present < needed) refused++;
      chunk += '\n';
    }
    await write(chunk);
  }
  out.end();
  await once(out, 'finish');
  return { refused };
}

interface WorkerFigures {
  seconds: number;
  idleRssMb: number;
  peakRssMb: number;
  /** RSS after each committed chunk (MB). */
  samples: number[];
  rows: number;
}

/** The worker side: one process that runs one job, as `accunode worker` would, and reports its memory. */
async function workerMain(cfg: { appUrl: string; userId: string; jobId: string }): Promise<WorkerFigures> {
  const sql = createPool(cfg.appUrl, { max: 2 });
  const engine = await loadModels();
  await sql`select 1`;
  const idle = process.memoryUsage().rss;
  const samples: number[] = [];
  const t0 = performance.now();
  const out = await runBulkJob({ sql, engine }, cfg.userId, cfg.jobId, {
    chunkRows: 5000,
    onProgress: () => samples.push(Math.round(process.memoryUsage().rss / 2 ** 20)),
  });
  const seconds = (performance.now() - t0) / 1000;
  await sql.end({ timeout: 5 });
  if (out.status !== 'completed') throw new Error(`big bulk job ended ${out.status}: ${JSON.stringify(out)}`);
  // maxRSS is in kB on Linux: the high-water mark of the whole process, the honest "peak".
  return { seconds, idleRssMb: Math.round(idle / 2 ** 20), peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024), samples, rows: out.progress.rows_succeeded };
}

function runWorker(cfg: { appUrl: string; userId: string; jobId: string }): Promise<WorkerFigures> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let s = '';
    p.stdout.on('data', (d) => (s += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(s.trim().split('\n').pop()!) as WorkerFigures) : reject(new Error(`bulk worker exited ${code}`))));
  });
}
const YEARS = 5;

/**
 * The reference data's rows, a few with too few ratios for a prediction (PREDICTION_MIN_RATIOS,
 * default a majority): an upload refuses those, and `refused` says how many to expect.
 */
function makeCsv(n: number): { csv: string; rows: Array<Record<string, unknown>>; refused: number } {
  const ds = generateReferenceData('annual', n, 101);
  const rows: Array<Record<string, unknown>> = [];
  const needed = requiredRatios('annual');
  let refused = 0;
  const lines = [['company_symbol', 'company_name', 'sector', 'reporting_year', ...ANNUAL_FIELD_NAMES].join(',')];
  for (let i = 0; i < n; i++) {
    const c = Math.floor(i / YEARS);
    const r: Record<string, unknown> = { company_symbol: `B${c}`, company_name: `Bench Company ${c}`, sector: 'Industrials', reporting_year: String(2015 + (i % YEARS)) };
    ANNUAL_FIELD_NAMES.forEach((f, j) => {
      const v = ds.columns[j]![i]!;
      r[f] = Number.isNaN(v) ? null : Math.round(v * 1e4) / 1e4;
    });
    if (ANNUAL_FIELD_NAMES.filter((f) => r[f] !== null).length < needed) refused++;
    rows.push(r);
    lines.push([r.company_symbol, r.company_name, r.sector, r.reporting_year, ...ANNUAL_FIELD_NAMES.map((f) => (r[f] === null ? '' : String(r[f])))].join(','));
  }
  return { csv: lines.join('\n') + '\n', rows, refused };
}

export async function run(opts: { rows?: number } = {}): Promise<BenchResult[]> {
  const n = opts.rows ?? N;
  // A clone of the migrated template (named so that a killed run's copy is dropped by the next
  // run's clean-up), dropped in the finally block.
  const db = await benchDatabase({ poolSize: 4 });
  const { adminSql, appSql } = db;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-bench-'));
  try {
    const [user] = await adminSql<[{ id: string }]>`
      insert into users (email, username, role, is_verified) values ('bench@example.com', 'bench', 'user', true) returning id`;
    const principal = { userId: user.id, role: 'user' as const, tenantId: null, organizationId: null };
    const engine = await loadModels();
    const { csv, rows, refused } = makeCsv(n);
    const file = path.join(dir, 'bench.csv');
    writeFileSync(file, csv);

    // Warm-up (JIT, connections, catalog caches) on a small file.
    const warm = path.join(dir, 'warm.csv');
    writeFileSync(warm, makeCsv(2000).csv.replace(/\nB/g, '\nW'));
    const wj = await createBulkJob(appSql, principal, { kind: 'annual', filePath: warm });
    await runBulkJob({ sql: appSql, engine }, user.id, wj.id);

    // End to end: file on disk → every row stored.
    const t0 = performance.now();
    const job = await createBulkJob(appSql, principal, { kind: 'annual', filePath: file });
    const out = await runBulkJob({ sql: appSql, engine }, user.id, job.id, { chunkRows: 10_000 });
    const e2eSec = (performance.now() - t0) / 1000;
    if (out.status !== 'completed' || out.progress.rows_succeeded !== n - refused || out.progress.rows_failed !== refused) {
      throw new Error(`bench bulk run did not store every valid row (expected ${n - refused} stored, ${refused} refused for too few ratios): ${JSON.stringify(out)}`);
    }
    const [{ stored }] = await adminSql<[{ stored: number }]>`select count(*)::int as stored from annual_predictions p join companies c on c.id = p.company_id where c.symbol like 'B%'`;
    if (stored !== n - refused) throw new Error(`expected ${n - refused} stored rows, found ${stored}`);

    // Baseline: the same rows, precomputed (not timed), COPYed raw into the same table.
    const ids = new Map((await adminSql<{ id: string; symbol: string }[]>`select id, symbol from companies where symbol like 'B%'`).map((c) => [c.symbol, c.id]));
    const lines: string[] = [];
    for (const r of rows) {
      const p = computePrediction(engine, 'annual', r);
      if (!p.ok) continue; // refused by the upload too

      const v = p.value;
      lines.push(
        [ids.get(r.company_symbol as string), user.id, v.reporting_year, ...ANNUAL_FIELD_NAMES.map((f) => v.ratios[f] ?? '\\N'),
          v.outputs.probability, v.outputs.risk_level, v.outputs.confidence, v.outputs.logistic_probability, v.outputs.step_probability, v.model.name, v.model.version].join('\t'),
      );
    }
    const payload = lines.join('\n') + '\n';
    await adminSql`delete from annual_predictions where company_id in (select id from companies where symbol like 'B%')`;
    await adminSql`vacuum annual_predictions`.catch(() => {});
    const t1 = performance.now();
    await adminSql.begin(async (tx) => {
      const w = await tx
        .unsafe(`COPY annual_predictions (company_id, created_by, reporting_year, ${ANNUAL_FIELD_NAMES.join(', ')}, probability, risk_level, confidence, logistic_probability, step_probability, model_name, model_version) FROM STDIN`)
        .writable();
      await pipeline(Readable.from([payload]), w);
    });
    const copySec = (performance.now() - t1) / 1000;
    // Rows stored, for both: the refused ones cost the upload little and the COPY nothing.
    const e2eRate = (n - refused) / e2eSec;
    const copyRate = (n - refused) / copySec;
    process.stderr.write(`bulk: ${n} rows end to end in ${e2eSec.toFixed(2)} s (${Math.round(e2eRate)} rows/s); raw COPY ${copySec.toFixed(2)} s (${Math.round(copyRate)} rows/s); ratio ${(e2eRate / copyRate).toFixed(3)}\n`);

    // The large file, in a worker process of its own so its memory is only the job's.
    const bigFile = path.join(dir, 'big.csv');
    const big = await writeBigCsv(bigFile, BIG);
    const bigJob = await createBulkJob(appSql, principal, { kind: 'annual', filePath: bigFile });
    const w = await runWorker({ appUrl: db.appUrl, userId: user.id, jobId: bigJob.id });
    if (w.rows !== BIG - big.refused) throw new Error(`big bulk job stored ${w.rows} of ${BIG - big.refused} valid rows`);
    const q = (f: number) => w.samples[Math.min(w.samples.length - 1, Math.floor(f * w.samples.length))] ?? NaN;
    process.stderr.write(`bulk: ${BIG} rows in a worker process in ${w.seconds.toFixed(1)} s; RSS idle ${w.idleRssMb} MB, after 10/50/90/100 % of chunks ${q(0.1)}/${q(0.5)}/${q(0.9)}/${q(1)} MB, peak ${w.peakRssMb} MB\n`);
    return [
      {
        scenario: `bulk.annual.worker_peak_rss_${BIG / 1e6}M_rows`,
        figure: w.peakRssMb,
        unit: 'MB',
        baseline: w.idleRssMb,
        baseline_label: 'the same worker idle, models loaded',
        ratio: Math.round((w.peakRssMb / w.idleRssMb) * 1e4) / 1e4,
        detail: { rows: BIG, seconds: Math.round(w.seconds * 10) / 10, rows_per_s: Math.round(BIG / w.seconds), rss_at_10pct_mb: q(0.1), rss_at_50pct_mb: q(0.5), rss_at_90pct_mb: q(0.9), rss_at_end_mb: q(1) },
      },
      {
        scenario: `bulk.annual.end_to_end_${n / 1000}k (${e2eSec.toFixed(2)} s)`,
        figure: Math.round(e2eRate),
        unit: 'rows/s',
        baseline: Math.round(copyRate),
        baseline_label: 'raw COPY of the same precomputed rows',
        ratio: Math.round((e2eRate / copyRate) * 1e4) / 1e4,
        detail: { rows: n, stored: n - refused, refused_too_few_ratios: refused, end_to_end_s: Math.round(e2eSec * 100) / 100, copy_s: Math.round(copySec * 100) / 100 },
      },
    ];
  } finally {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.argv[2] === '--worker') {
  process.stdout.write(JSON.stringify(await workerMain(JSON.parse(process.argv[3]!) as { appUrl: string; userId: string; jobId: string })) + '\n');
  process.exit(0);
} else if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await run();
  console.log(JSON.stringify(r, null, 2));
}
