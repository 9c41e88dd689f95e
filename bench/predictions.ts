// bench/predictions: the analyst's hot paths through the real API (auth, rate limit, RLS, models,
// audit, cache) beside bare Fastify routes doing the one database or Redis operation at their core,
// all measured in this run: create annual prediction vs one INSERT; get a cached prediction vs one
// Redis GET; list 50 vs one SELECT ... LIMIT 50. Then p99 of create at half its maximum rate.
import Fastify from 'fastify';
import { pathToFileURL } from 'node:url';
import { runClient } from './client.js';
import { luaList, runWrk } from './wrk.js';
import { RATIOS, benchDatabase, closeAll, createUsers, load, printResults, round, signIn, startApp, type BenchResult, type RunningApp } from './lib.js';

export const knobs = ['BENCH_SECONDS', 'BENCH_REDIS_URL'];
export const about =
  'predictions: each hot path through the real API beside a bare Fastify route doing only its core operation via postgres.js/ioredis: ' +
  'create annual (existing company, new period) vs one INSERT; cached get vs one Redis GET; list 50 vs one SELECT ... LIMIT 50; ' +
  'and create p99 at half its maximum rate vs the bare INSERT route at the same rate from the same client (after a one-second warm-up).';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

// Every request a new (company, period): the analyst's usual create (an existing company by id,
// a new period), never a 409. Request k of a run takes company k mod C and year base + k div C;
// each run starts its years after the last one's.
let companies: string[] = [];
let nextYear = 1900; // reporting years run 1900-2100
const bodyLua = (year: string, company: string) => `'{"company_id":"' .. ${company} .. '","reporting_year":"' .. ${year} .. '",${JSON.stringify(RATIOS).slice(1, -1)}}'`;

async function createLoad(url: string, token: string, opts: { seconds: number }) {
  const base = nextYear;
  nextYear += 10; // 20,000 creates: more than 16 connections make in a run here
  const r = await runWrk(url, { connections: 16, seconds: opts.seconds, script: {
    init: `companies = ${luaList(companies)}; n = 0`,
    request: `local k = n * threads + thread_id
      n = n + 1
      return wrk.format("POST", "/api/v1/predictions/annual", { ["Authorization"] = "Bearer ${token}", ["Content-Type"] = "application/json" },
        ${bodyLua(`(${base} + math.floor(k / #companies))`, 'companies[(k % #companies) + 1]')})`,
  } });
  if (nextYear - base < Math.ceil(r.requests / companies.length)) throw new Error('bench/predictions: a run overran its years');
  return r;
}

/** Open-loop creates at a fixed rate (bench/client.ts): latency from when each was due. */
async function createAtRate(url: string, token: string, rate: number, seconds: number) {
  const total = Math.round(rate * (seconds + 1)); // and the client's one-second warm-up
  const base = nextYear;
  nextYear += Math.ceil(total / companies.length) + 1;
  const bodies = Array.from({ length: total }, (_, k) => JSON.stringify({ company_id: companies[k % companies.length], reporting_year: String(base + Math.floor(k / companies.length)), ...RATIOS }));
  const r = await runClient({ mode: 'rate', base: url, rate, seconds, step: { method: 'POST', path: '/api/v1/predictions/annual', headers: { authorization: `Bearer ${token}` }, bodies, status: 201 } });
  const s = r.steps[0]!;
  return { rps: r.rps, p50: s.p50, p99: s.p99, errors: s.failures, non2xx: 0, firstFailure: s.firstFailure };
}

/** Calls per Redis command from INFO commandstats. */
function commandCounts(info: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

export async function run(): Promise<BenchResult[]> {
  const db = await benchDatabase();
  const bare = Fastify();
  let running: RunningApp | null = null;
  try {
    running = await startApp(db);
    const { url, redis } = running;
    const [u] = await createUsers(db, [{ username: 'bench', role: 'user' }]);
    companies = (await db.adminSql<{ id: string }[]>`
      insert into companies (symbol, name, access_level, created_by)
      select 'B' || g, 'Bench ' || g, 'personal', ${u!.id} from generate_series(1, 2000) g returning id`).map((r) => r.id);
    const { token } = await signIn(url, u!);
    const auth = { authorization: `Bearer ${token}` };

    // Baselines: the single operation at the heart of each path, behind a bare Fastify route.
    await db.adminSql`create table bench_baseline (id bigserial primary key, company text, year text, probability numeric(10,6), created_at timestamp default now())`;
    await db.adminSql`grant all on bench_baseline, bench_baseline_id_seq to app_user`;
    await redis.set('bench:baseline', JSON.stringify({ id: 'x', probability: 0.01, ...RATIOS }));
    let i = 0;
    bare.post('/insert', async () => {
      const [r] = await db.appSql`insert into bench_baseline (company, year, probability) values (${'C' + i++}, '2024', 0.012345) returning id`;
      return r;
    });
    bare.get('/get', async () => JSON.parse((await redis.get('bench:baseline'))!));
    bare.get('/list', async () => db.appSql`select * from bench_baseline order by id desc limit 50`);
    const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });

    // Warm up both (JIT, pools, model artifacts).
    await createLoad(url, token, { seconds: 1 });
    await load(`${bareUrl}/insert`, { seconds: 1, method: 'POST' });

    const baseInsert = await load(`${bareUrl}/insert`, { seconds: SECONDS, method: 'POST' });
    // Where a create's time goes: PostgreSQL's own mean for the create statement
    // (pg_stat_statements, when the server preloads it, as the bench server does) and the Redis
    // commands per request (INFO commandstats before and after).
    const pgss = await db.adminSql`create extension if not exists pg_stat_statements`.then(() => true, () => false);
    if (pgss) await db.adminSql`select pg_stat_statements_reset()`.catch(() => {});
    const redisBefore = commandCounts(await redis.info('commandstats'));
    const create = await createLoad(url, token, { seconds: SECONDS });
    const redisAfter = commandCounts(await redis.info('commandstats'));
    const [stmt] = pgss
      ? await db.adminSql<{ calls: number; ms: number }[]>`
          select calls::int, mean_exec_time as ms from pg_stat_statements where query like '%app_create_annual_prediction%' order by calls desc limit 1`.catch(() => [])
      : [];
    const redisPerCreate: Record<string, number> = Object.fromEntries(Object.entries(redisAfter).map(([k, v]) => [k, round((v - (redisBefore[k] ?? 0)) / Math.max(1, create.requests), 2)]).filter(([, v]) => (v as number) > 0.01));
    process.stderr.write(`predictions: create ${Math.round(create.rps)} req/s; PostgreSQL ${stmt ? `${round(stmt.ms, 3)} ms per create statement (${stmt.calls} calls)` : 'statement timing unavailable'}; Redis commands per create ${JSON.stringify(redisPerCreate)}\n`);
    const [p] = await db.adminSql<{ id: string }[]>`select id from annual_predictions limit 1`;
    await fetch(`${url}/api/v1/predictions/annual/${p!.id}`, { headers: auth }); // fill the cache
    const baseGet = await load(`${bareUrl}/get`, { seconds: SECONDS });
    const get = await load(`${url}/api/v1/predictions/annual/${p!.id}`, { seconds: SECONDS, headers: auth });
    const baseList = await load(`${bareUrl}/list`, { seconds: SECONDS });
    const list = await load(`${url}/api/v1/predictions/annual?limit=50`, { seconds: SECONDS, headers: auth });
    const halfRate = Math.max(10, Math.floor(create.rps / 2));
    const half = await createAtRate(url, token, halfRate, SECONDS);
    // The floor this machine sets: the bare INSERT route at the same rate, from the same client.
    const halfBase = (await runClient({ mode: 'rate', base: bareUrl, rate: halfRate, seconds: SECONDS, step: { method: 'POST', path: '/insert' } })).steps[0]!;

    for (const [name, r] of Object.entries({ create, get, list, half })) {
      if (r.errors > 0 || r.non2xx > 0) throw new Error(`bench/predictions ${name}: ${r.errors} errors, ${r.non2xx} non-2xx; first: ${r.firstFailure}`);
    }
    return [
      { scenario: 'predictions.create_annual (existing company) vs bare INSERT', figure: create.rps, unit: 'req/s', baseline: baseInsert.rps, baseline_label: 'bare INSERT route', ratio: create.rps / baseInsert.rps,
        detail: { p50_ms: create.p50, p99_ms: create.p99, ...(stmt ? { pg_create_statement_ms: round(stmt.ms, 3) } : {}), redis_commands_per_create: round(Object.values(redisPerCreate).reduce((a, b) => a + b, 0), 2) } },
      { scenario: 'predictions.get_cached vs bare Redis GET', figure: get.rps, unit: 'req/s', baseline: baseGet.rps, baseline_label: 'bare Redis GET route', ratio: get.rps / baseGet.rps, detail: { p50_ms: get.p50, p99_ms: get.p99 } },
      { scenario: 'predictions.list_50 vs bare SELECT LIMIT 50', figure: list.rps, unit: 'req/s', baseline: baseList.rps, baseline_label: 'bare SELECT LIMIT 50 route', ratio: list.rps / baseList.rps, detail: { p50_ms: list.p50, p99_ms: list.p99 } },
      { scenario: 'predictions.create_annual p99 at half the max rate', figure: half.p99, unit: 'ms', baseline: halfBase.p99, baseline_label: 'bare INSERT route p99 at the same rate, same client', ratio: half.p99 / Math.max(halfBase.p99, 1), detail: { rate_rps: halfRate, p50_ms: half.p50, baseline_p50_ms: halfBase.p50, bare_insert_p99_at_full_load_ms: baseInsert.p99 } },
    ];
  } finally {
    await closeAll(() => db.drop(), running ? () => running!.close() : null, () => bare.close());
  }
}

// Exit explicitly: under heavy load postgres.js can keep a closed pool's socket referenced after end().
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printResults(await run());
  process.exit(0);
}
