// `npm run bench [-- name ...]`: runs every bench/*.ts that exports run() (or only the named ones),
// writes bench/results/latest.json and docs/benchmarks.md, and prints the markdown table
// (scenario, figure, baseline measured in the same run, ratio, details).
//
// A subset run replaces only those benches' rows: the others stay as last measured, each with its
// own date and settings, so docs/benchmarks.md always lists every scenario.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { startBenchPostgres } from './servers.js';
import type { BenchResult } from './lib.js';

export type { BenchResult };


interface BenchRecord {
  at: string;
  /** BENCH_* environment knobs in effect (empty: the defaults). */
  settings: Record<string, string>;
  /** 1-minute load average when the bench started (the machine may be shared). */
  load_avg_1m: number;
  about: string;
  results: BenchResult[];
  error?: string;
}

interface Latest {
  machine: Machine;
  at: string;
  benches: Record<string, BenchRecord>;
  /** Every bench's rows, flattened (the shape earlier versions of this file had). */
  results: BenchResult[];
}

interface Machine {
  cpu: string;
  cores: number;
  ram_gib: number;
  os: string;
  node: string;
  postgresql: string;
  redis: string;
  /** Which PostgreSQL the benches ran on (bench/servers.ts). */
  server?: string;
}

const dir = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(dir);
const latestPath = path.join(dir, 'results', 'latest.json');
const docPath = path.join(root, 'docs', 'benchmarks.md');

async function describeMachine(): Promise<Machine> {
  const cpus = os.cpus();
  let pg = 'unknown';
  let redis = 'unknown';
  const sql = postgres(TEST_PG_ADMIN_URL, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    const [r] = await sql<{ v: string }[]>`select current_setting('server_version') as v`;
    pg = r!.v;
  } catch (err) {
    pg = `unreachable (${(err as Error).message})`;
  } finally {
    await sql.end({ timeout: 5 });
  }
  const rc = new Redis(BENCH_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5000 });
  try {
    await rc.connect();
    redis = /redis_version:(\S+)/.exec(await rc.info('server'))?.[1] ?? 'unknown';
  } catch (err) {
    redis = `unreachable (${(err as Error).message})`;
  } finally {
    rc.disconnect();
  }
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    ram_gib: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgresql: pg,
    redis,
    server: server.describe,
  };
}

function readLatest(): Latest | null {
  if (!existsSync(latestPath)) return null;
  try {
    const j = JSON.parse(readFileSync(latestPath, 'utf8')) as Partial<Latest>;
    return j.benches && j.machine && typeof j.machine === 'object' ? (j as Latest) : null; // older format: start afresh
  } catch {
    return null;
  }
}

const fmt = (n: number) => (!Number.isFinite(n) ? String(n) : Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : Number(n.toPrecision(3)).toString());
const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(benches: Record<string, BenchRecord>): string {
  const lines = ['| scenario | figure | baseline (same run) | ratio | details |', '|---|---|---|---|---|'];
  for (const [name, b] of Object.entries(benches)) {
    if (b.error) lines.push(`| ${name} | **FAILED** | | | ${esc(b.error)} |`);
    for (const r of b.results) {
      const detail = r.detail ? Object.entries(r.detail).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') : '';
      const baseline = `${fmt(r.baseline)} ${r.unit}${r.baseline_label ? ` (${esc(r.baseline_label)})` : ''}`;
      lines.push(`| ${esc(r.scenario)} | ${fmt(r.figure)} ${r.unit} | ${baseline} | ${r.ratio.toFixed(3)} | ${esc(detail)} |`);
    }
  }
  return lines.join('\n');
}

function document(l: Latest): string {
  const m = l.machine;
  const SCALE = scaleCurve(l);
  const runs = Object.entries(l.benches)
    .map(([name, b]) => `- **${name}** — ${b.at}, load average ${b.load_avg_1m ?? '?'} at start; settings: ${Object.keys(b.settings).length ? Object.entries(b.settings).map(([k, v]) => `\`${k}=${v}\``).join(' ') : 'defaults'}`)
    .join('\n');
  const reduced = Object.entries(l.benches).filter(([, b]) => Object.keys(b.settings).some((k) => k !== 'BENCH_REDIS_URL')).map(([n]) => n);
  const warning = reduced.length
    ? `\n> **Not the published figures:** ${reduced.join(', ')} ran with non-default settings (a smoke run); run \`npm run bench\` with no BENCH_* variables for the real ones.\n`
    : '';
  const notes = Object.entries(l.benches)
    .map(([name, b]) => `- **${name}** — ${b.about || '(no description exported)'}`)
    .join('\n');
  return `# Benchmarks

Produced by \`npm run bench\` (bench/run.ts; \`npm run bench -- mixed analytics\` re-runs a subset and
keeps the other rows). Every figure sits beside a baseline measured in the same run on the same
machine, so the **ratio** (figure ÷ baseline) is the number to compare across machines. For req/s,
rows/s and predictions/s higher is better; for ms lower is better (a ratio above 1 is the overhead).
Latencies are in ms.

## Machine

| | |
|---|---|
| CPU | ${m.cpu} |
| Cores | ${m.cores} |
| RAM | ${m.ram_gib} GiB |
| OS | ${m.os} |
| Node | ${m.node} |
| PostgreSQL | ${m.postgresql}${m.server ? ` — ${m.server}` : ''} |
| Redis | ${m.redis} |
| Written | ${l.at} |

The API, PostgreSQL and Redis share these cores, all on loopback. The load generator runs in a
process of its own (wrk from Debian, or bench/client.ts for open-loop rates and write-then-read
sequences), never in the API's event loop; it competes for the same two cores, as a user's load
balancer would not, so ratios against a bare baseline measured the same way are the fair figure.
${SCALE}

## Results
${warning}
${table(l.benches)}

## How the online paths stay flat as data grows

- **Lists** page by keyset (\`next_cursor\`): each page is a walk of one index per (scope, risk
  level) merged in sort order (a Merge Append that stops after \`limit\` rows), planned once per
  connection as a generic plan with parallel workers off, so a page reads about \`limit\` plus one
  row per walk whatever the tenant holds. Totals come from the rollups (exact) or stop counting
  at 1,000 (\`total_relation: "gte"\`); an \`offset\` past 1,000 is refused in favour of the cursor.
- **Summaries** read incrementally maintained rollups (statement-level capture triggers append
  deltas; a compactor in every api/worker process folds them each second; a read adds the
  unfolded deltas, so it is exact right after a write). Only the top-risk list reads
  predictions, a few index pages of them.
- **Creates** are one round trip: \`app_create_*_prediction()\` sets the caller's context, checks
  the company, inserts the prediction and its audit row under row-level security.
- **Plans that cannot drift** as a tenant grows: page statements run with JIT off (a generic
  plan's cost passes \`jit_above_cost\` from about 4M rows, and compiling took 520 ms of a 0.3 ms
  walk), and the statistics are told scopes are many (migration 0044, \`n_distinct\` on \`scope_id\`),
  so a generic plan never prefers a scope-less index filtered by scope (for a member's empty
  scopes that read the whole organization: 2.2 s a portfolio page at 10M). Capped counts walk each
  scope's index in order for the same reason. test/foundation/explain-skew.test.ts holds every
  list and count to O(page) rows on one-organization data.
- **Partitioning** was not added: at 10M rows every list, summary and create above is already
  independent of the table's size, and the 2-year archive moves old rows to the archive tables in
  batches through a \`(created_at)\` index, costing what it moves rather than what the table holds. Time partitions would
  add a partition key to every unique key (company + period would no longer be enforceable
  across partitions) for a gain no measurement here showed.

## When each bench ran

${runs}

## What the baselines are

${notes}
`;
}

/** The scale curve: the scale bench's rows as one table per measure, sizes across. */
function scaleCurve(l: Latest): string {
  const rows = l.benches.scale?.results ?? [];
  if (rows.length === 0) return '';
  const sizes: string[] = [];
  const byMeasure = new Map<string, Map<string, BenchResult>>();
  for (const r of rows) {
    const m = /^scale\.(.+) @ (.+)$/.exec(r.scenario);
    if (!m) continue;
    if (!sizes.includes(m[2]!)) sizes.push(m[2]!);
    if (!byMeasure.has(m[1]!)) byMeasure.set(m[1]!, new Map());
    byMeasure.get(m[1]!)!.set(m[2]!, r);
  }
  const lines = [`| measure | ${sizes.join(' | ')} |`, `|---|${sizes.map(() => '---').join('|')}|`];
  for (const [measure, at] of byMeasure) {
    const cells = sizes.map((s) => {
      const r = at.get(s);
      return r ? `${fmt(r.figure)} ${r.unit} (baseline ${fmt(r.baseline)}, ×${r.ratio.toFixed(2)})` : '';
    });
    lines.push(`| ${esc(measure)} | ${cells.join(' | ')} |`);
  }
  return `
## Scale curve

One organization grown from the smallest size to the largest (predictions generated in SQL), the
same requests at each size through the real API as an \`org_member\`. Each cell: the figure, the
baseline measured in the same run (the same SQL as the owner without HTTP; pgbench for inserts)
and their ratio. List and portfolio figures are p50 of one connection's back-to-back pages.

${lines.join('\n')}
`;
}

// `--doc`: rewrite docs/benchmarks.md from bench/results/latest.json, running nothing.
if (process.argv.includes('--doc')) {
  const l = readLatest();
  if (!l) {
    console.error(`no ${path.relative(root, latestPath)} to write the page from`);
    process.exit(2);
  }
  writeFileSync(docPath, document(l));
  console.log(`wrote ${path.relative(root, docPath)}`);
  process.exit(0);
}

// The server comes first: the test helpers (and so every bench) read TEST_DATABASE_ADMIN_URL when
// they are imported, so everything that imports them is loaded dynamically after this.
const server = await startBenchPostgres();
process.env.TEST_DATABASE_ADMIN_URL = server.adminUrl;
process.once('exit', () => server.stop());
const { BENCH_REDIS_URL } = await import('./lib.js');
const TEST_PG_ADMIN_URL = server.adminUrl;

const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && f !== 'lib.ts' && !f.startsWith('_'))
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.ts$/, '')))
  .sort();
const unknown = only.filter((n) => !files.includes(n + '.ts'));
if (unknown.length > 0) {
  console.error(`no such bench: ${unknown.join(', ')}`);
  process.exit(2);
}

const envKnobs = (names: readonly string[] | undefined) =>
  Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('BENCH_') && v !== undefined && v !== '' && (!names || names.includes(k))).sort(([a], [b]) => a.localeCompare(b))) as Record<string, string>;
const previous = readLatest();
const benches: Record<string, BenchRecord> = { ...(previous?.benches ?? {}) };
let failed = 0;
for (const f of files) {
  const name = f.replace(/\.ts$/, '');
  const mod = (await import(pathToFileURL(path.join(dir, f)).href)) as { run?: () => Promise<BenchResult[]>; about?: string; knobs?: readonly string[] };
  if (typeof mod.run !== 'function') continue;
  process.stderr.write(`bench ${name}...\n`);
  const rec = { at: new Date().toISOString(), settings: envKnobs(mod.knobs), load_avg_1m: Math.round(os.loadavg()[0]! * 100) / 100, about: mod.about ?? '' };
  try {
    benches[name] = { ...rec, results: await mod.run() };
  } catch (err) {
    failed++;
    process.stderr.write(`bench ${name} FAILED: ${(err as Error).stack ?? String(err)}\n`);
    benches[name] = { ...rec, results: [], error: (err as Error).message };
  }
}

const ordered = Object.fromEntries(Object.entries(benches).sort(([a], [b]) => a.localeCompare(b)));
const latest: Latest = { machine: await describeMachine(), at: new Date().toISOString(), benches: ordered, results: Object.values(ordered).flatMap((b) => b.results) };
mkdirSync(path.dirname(latestPath), { recursive: true });
writeFileSync(latestPath + '.tmp', JSON.stringify(latest, null, 2) + '\n');
renameSync(latestPath + '.tmp', latestPath);
mkdirSync(path.dirname(docPath), { recursive: true });
writeFileSync(docPath, document(latest));

const m = latest.machine;
console.log(`Machine: ${m.cores} × ${m.cpu}, ${m.ram_gib} GiB, Node ${m.node}, PostgreSQL ${m.postgresql}, Redis ${m.redis}\n`);
console.log(table(ordered));
console.log(`\nwrote ${path.relative(root, latestPath)} and ${path.relative(root, docPath)}`);
if (failed > 0) console.error(`${failed} bench(es) failed`);
// Every bench closes its servers and drops its database in a finally block; exit explicitly anyway,
// since under heavy load postgres.js can keep an ended pool's socket referenced (seen after the
// 200-client mixed run), which would otherwise hang the runner.
process.exit(failed > 0 ? 1 : 0);
