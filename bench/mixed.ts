// bench/mixed: the API under a mixed workload, as several analysts of one organization use it at
// once: 70 % reads (GET a prediction that is in the cache), 20 % creates (annual prediction for an
// existing company, a new period each time: never a 409), 10 % lists (limit 50). 200 concurrent
// clients for 60 s (BENCH_MIXED_SECONDS) through the real app (sessions, rate limits, RLS, models,
// audit, cache) on loopback. Any non-2xx or socket error fails the bench.
//
// Baseline, same run, same 200 clients, same exact mix chosen by the same counter: a bare Fastify
// app doing only the one operation at the core of each request — one Redis GET (read), one INSERT
// via postgres.js (create), one SELECT ... LIMIT 50 (list). A single-operation baseline (one INSERT
// or one GET by key) would make the ratio depend on the mix; this one makes it "what the whole
// stack costs over the bare data operations, for this mix".
//
//   npx tsx bench/mixed.ts     (BENCH_MIXED_SECONDS=2 BENCH_MIXED_CONNECTIONS=20 for a smoke run)
import Fastify from 'fastify';
import { lua, luaList, runWrk } from './wrk.js';
import { pathToFileURL } from 'node:url';
import type { TestDatabase } from '../test/helpers/db.js';
import {
  RATIOS, benchDatabase, closeAll, createUsers, envNumber, printResults, round, signIn, startApp,
  type BenchResult, type BenchUser, type RunningApp,
} from './lib.js';

export const knobs = ['BENCH_MIXED_SECONDS', 'BENCH_MIXED_CONNECTIONS', 'BENCH_MIXED_USERS', 'BENCH_MIXED_ORG_COMPANIES', 'BENCH_MIXED_PERSONAL_COMPANIES', 'BENCH_MIXED_READ_SET', 'BENCH_REDIS_URL'];
export const about =
  'mixed: 70 % cached GET of a prediction, 20 % annual creates (existing companies, new periods), 10 % lists of 50, ' +
  'several signed-in members of one organization (organization and personal scopes), through the real API. ' +
  'Baseline: a bare Fastify app answering the same mix, chosen by the same counter, with only the core data operation ' +
  '(one Redis GET / one INSERT / one SELECT LIMIT 50), same connections and duration.';

const SECONDS = envNumber('BENCH_MIXED_SECONDS', 60);
const CONNECTIONS = envNumber('BENCH_MIXED_CONNECTIONS', 200);
const USERS = envNumber('BENCH_MIXED_USERS', 4);
const ORG_COMPANIES = envNumber('BENCH_MIXED_ORG_COMPANIES', 1000);
const PERSONAL_COMPANIES = envNumber('BENCH_MIXED_PERSONAL_COMPANIES', 250); // per user
const READ_SET = envNumber('BENCH_MIXED_READ_SET', 400);
const SEED_YEAR = '2100'; // read-set predictions; creates walk the years up from 1900

interface Target {
  id: string;
  /** Index of the only user who may use it (personal scope), or null: any member (organization). */
  owner: number | null;
}

interface MixTargets {
  /** Bearer tokens, one per user ([] for the baseline, which has no auth). */
  tokens: string[];
  reads: Target[];
  companies: Target[];
  /** First reporting year of this run's creates (each run takes years of its own). */
  firstYear: number;
  paths: { read: (id: string) => string; create: string; list: string };
}

/**
 * wrk, in its own process, with a Lua script choosing each request: request i of a thread
 * (i = local count × threads + thread id) is a read, a create or a list by i mod 10 (7/2/1, the
 * same in every run); create c takes company c mod C and year firstYear + c div C, so no pair is
 * ever used twice and every create is a real 201.
 */
async function mix(url: string, seconds: number, connections: number, t: MixTargets) {
  const owners = (xs: Target[]) => `{${xs.map((x) => (x.owner === null ? 0 : x.owner + 1)).join(',')}}`;
  const auth = (u: string) => (t.tokens.length ? `{ ["Authorization"] = "Bearer " .. tokens[${u}], ["Content-Type"] = "application/json" }` : '{ ["Content-Type"] = "application/json" }');
  const pick = (owner: string, k: string) => `local u = ${owner}; if u == 0 then u = (${k} % math.max(1, #tokens)) + 1 end`;
  const r = await runWrk(url, { connections, threads: 2, seconds, script: {
    init: `tokens = ${luaList(t.tokens)}; reads = ${luaList(t.reads.map((x) => t.paths.read(x.id)))}; readOwner = ${owners(t.reads)}
      companies = ${luaList(t.companies.map((x) => x.id))}; companyOwner = ${owners(t.companies)}
      n = 0; nr = 0; nc = 0; nl = 0`,
    request: `local i = n * threads + thread_id
      n = n + 1
      local k = i % 10
      if k < 7 then
        local j = (nr * threads + thread_id) % #reads
        nr = nr + 1
        ${pick('readOwner[j + 1]', 'j')}
        return wrk.format("GET", reads[j + 1], ${auth('u')})
      elseif k < 9 then
        local c = nc * threads + thread_id
        nc = nc + 1
        local ci = c % #companies
        ${pick('companyOwner[ci + 1]', 'c')}
        local body = '{"company_id":"' .. companies[ci + 1] .. '","reporting_year":"' .. (${t.firstYear} + math.floor(c / #companies)) .. '",${JSON.stringify(RATIOS).slice(1, -1)}}'
        return wrk.format("POST", ${lua(t.paths.create)}, ${auth('u')}, body)
      else
        local l = nl * threads + thread_id
        nl = nl + 1
        local u = (l % math.max(1, #tokens)) + 1
        return wrk.format("GET", ${lua(t.paths.list)}, ${auth('u')})
      end`,
  } });
  return r;
}

async function seed(db: TestDatabase, api: RunningApp): Promise<{ users: BenchUser[]; companies: Target[]; reads: Target[] }> {
  const a = db.adminSql;
  const [t] = await a<{ id: string }[]>`insert into tenants (name) values ('bench tenant') returning id`;
  const [o] = await a<{ id: string }[]>`insert into organizations (tenant_id, name, max_members) values (${t!.id}, 'bench org', 1000) returning id`;
  const rows = await createUsers(db, Array.from({ length: USERS }, (_, k) => ({ username: `mix${k}`, role: 'org_member', tenantId: t!.id, organizationId: o!.id })));
  const users = await Promise.all(rows.map((u) => signIn(api.url, u)));

  // Organization companies (any member may add predictions) and each member's personal ones.
  const companies: Target[] = (await a<{ id: string }[]>`
    insert into companies (symbol, name, sector, access_level, organization_id, created_by)
    select 'O' || g, 'Org company ' || g, 'Industrials', 'organization', ${o!.id}, ${users[0]!.id}
    from generate_series(1, ${ORG_COMPANIES}) g returning id`).map((r) => ({ id: r.id, owner: null }));
  for (let k = 0; k < users.length; k++) {
    const mine = await a<{ id: string }[]>`
      insert into companies (symbol, name, sector, access_level, created_by)
      select 'P' || g, 'Personal company ' || g, 'Utilities', 'personal', ${users[k]!.id}
      from generate_series(1, ${PERSONAL_COMPANIES}) g returning id`;
    companies.push(...mine.map((r) => ({ id: r.id, owner: k })));
  }
  // Interleave so consecutive creates spread over scopes and users.
  companies.sort((x, y) => (x.id < y.id ? -1 : 1));

  // The read set: predictions made through the API (year 2100, never reached by the creates),
  // then read once each so they are in the cache.
  const reads: Target[] = [];
  const picks = companies.slice(0, Math.min(READ_SET, companies.length));
  for (let s = 0; s < picks.length; s += 20) {
    await Promise.all(picks.slice(s, s + 20).map(async (c, j) => {
      const u = users[c.owner ?? (s + j) % users.length]!;
      const res = await fetch(`${api.url}/api/v1/predictions/annual`, {
        method: 'POST',
        headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ company_id: c.id, reporting_year: SEED_YEAR, ...RATIOS }),
      });
      if (res.status !== 201 && res.status !== 200) throw new Error(`bench/mixed seed: HTTP ${res.status} ${await res.text()}`);
      const { id } = (await res.json()) as { id: string };
      reads.push({ id, owner: c.owner });
      const get = await fetch(`${api.url}/api/v1/predictions/annual/${id}`, { headers: { authorization: `Bearer ${u.token}` } });
      if (get.status !== 200) throw new Error(`bench/mixed seed read: HTTP ${get.status}`);
      await get.arrayBuffer();
    }));
  }
  return { users, companies, reads };
}

export async function run(): Promise<BenchResult[]> {
  let db: TestDatabase | null = null;
  let api: RunningApp | null = null;
  const bare = Fastify();
  try {
    db = await benchDatabase({ poolSize: 20 });
    api = await startApp(db);
    const { users, companies, reads } = await seed(db, api);
    const auth = (k: number) => ({ authorization: `Bearer ${users[k]!.token}` });

    // Each API run's creates take 80 reporting years of their own (C × 80 creates, far more than a
    // run makes here); reporting years run 1900-2100 and 2100 is the read set's.
    let year = 1900;
    const years = () => { const y = year; year += 80; return y; };
    const apiTargets = () => ({
      tokens: users.map((u) => u.token), reads, companies, firstYear: years(),
      paths: { read: (id: string) => `/api/v1/predictions/annual/${id}`, create: '/api/v1/predictions/annual', list: '/api/v1/predictions/annual?limit=50' },
    });

    // Baseline: the core data operation of each request type, nothing else.
    const a = db.adminSql;
    await a`create table bench_baseline (id bigserial primary key, company text, year text, probability numeric(10,6), created_at timestamp default now())`;
    await a`insert into bench_baseline (company, year, probability) select 'S' || g, '2024', 0.012345 from generate_series(1, 1000) g`;
    await a`grant all on bench_baseline, bench_baseline_id_seq to app_user`;
    const sample = await (await fetch(`${api.url}/api/v1/predictions/annual/${reads[0]!.id}`, { headers: auth(reads[0]!.owner ?? 0) })).text();
    const keyspace = `bench:mixed:${db.name}:`;
    for (let r = 0; r < reads.length; r++) await api.redis.set(keyspace + r, sample, 'EX', 3600);
    let b = 0;
    const appSql = db.appSql;
    bare.get('/get/:n', async (req) => JSON.parse((await api!.redis.get(keyspace + (req.params as { n: string }).n))!) as unknown);
    bare.post('/insert', async () => {
      const [r] = await appSql`insert into bench_baseline (company, year, probability) values (${'C' + b++}, '2024', 0.012345) returning *`;
      return r;
    });
    bare.get('/list', async () => appSql`select * from bench_baseline order by id desc limit 50`);
    const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });
    const bareTargets = (): MixTargets => ({
      tokens: [], reads: reads.map((_, r) => ({ id: String(r), owner: null })), companies, firstYear: 0,
      paths: { read: (n: string) => `/get/${n}`, create: '/insert', list: '/list' },
    });

    // Warm-up (JIT, pools, model artifacts), then the measured runs.
    const warm = Math.min(3, SECONDS);
    const w1 = await mix(api.url, warm, CONNECTIONS, apiTargets());
    const w2 = await mix(bareUrl, warm, CONNECTIONS, bareTargets());
    for (const [name, f] of [['warm-up (API)', w1], ['warm-up (baseline)', w2]] as const) {
      if (f.errors > 0 || f.non2xx > 0) throw new Error(`bench/mixed ${name}: ${f.errors} errors, ${f.non2xx} non-2xx; first: ${f.firstFailure}`);
    }
    const base = await mix(bareUrl, SECONDS, CONNECTIONS, bareTargets());
    const [{ before }] = await a<[{ before: number }]>`select count(*)::int as before from annual_predictions`;
    const m = await mix(api.url, SECONDS, CONNECTIONS, apiTargets());
    if (m.errors > 0 || m.non2xx > 0) throw new Error(`bench/mixed FAILED: ${m.errors} errors/timeouts and ${m.non2xx} non-2xx responses; first: ${m.firstFailure}`);
    if (base.errors > 0 || base.non2xx > 0) throw new Error(`bench/mixed baseline: ${base.errors} errors, ${base.non2xx} non-2xx; first: ${base.firstFailure}`);
    const [{ after }] = await a<[{ after: number }]>`select count(*)::int as after from annual_predictions`;
    // Two creates in every ten requests, each a 201: the table must have grown by about that much.
    const created = after - before;
    if (created < Math.floor(m.requests * 0.2) - CONNECTIONS) throw new Error(`bench/mixed: ${m.requests} requests should have stored ~${Math.floor(m.requests * 0.2)} predictions, stored ${created}`);

    process.stderr.write(
      `mixed: ${m.requests} requests in ${round(m.seconds, 1)} s, ${Math.round(m.rps)} req/s, p50 ${m.p50} ms p95 ${m.p95} ms p99 ${m.p99} ms, ` +
        `errors 0, ${created} creates stored; baseline ${Math.round(base.rps)} req/s p95 ${base.p95} ms p99 ${base.p99} ms\n`,
    );
    return [
      {
        scenario: `mixed 70/20/10 read/create/list, ${CONNECTIONS} clients, ${SECONDS} s, ${users.length} users`,
        figure: round(m.rps, 1),
        unit: 'req/s',
        baseline: round(base.rps, 1),
        baseline_label: 'bare Fastify, same mix: Redis GET / INSERT / SELECT LIMIT 50',
        ratio: round(m.rps / base.rps, 4),
        detail: {
          p50_ms: m.p50, p95_ms: m.p95, p99_ms: m.p99, errors: m.errors + m.non2xx,
          requests: m.requests, creates_stored: created,
          baseline_p50_ms: base.p50, baseline_p95_ms: base.p95, baseline_p99_ms: base.p99,
        },
      },
    ];
  } finally {
    await closeAll(db ? () => db!.drop() : null, api ? () => api!.close() : null, () => bare.close());
  }
}

// Exit explicitly: under heavy load postgres.js can keep a closed pool's socket referenced after end().
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printResults(await run());
  process.exit(0);
}
