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
import autocannon from 'autocannon';
import { pathToFileURL } from 'node:url';
import type { TestDatabase } from '../test/helpers/db.js';
import {
  RATIOS, benchDatabase, closeAll, createUsers, envNumber, percentile, printResults, round, signIn, startApp,
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

type Op = 'read' | 'create' | 'list';
/** Exactly 7 reads, 2 creates and 1 list in every 10 consecutive requests (counter mod 10). */
export function opFor(i: number): Op {
  const k = i % 10;
  return k < 7 ? 'read' : k < 9 ? 'create' : 'list';
}

interface Target {
  id: string;
  /** Index of the only user who may use it (personal scope), or null: any member (organization). */
  owner: number | null;
}

interface MixFigures {
  seconds: number;
  completed: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  byOp: Record<Op, { n: number; p50: number; p99: number }>;
  errors: number;
  non2xx: number;
  firstFailure: string | null;
}

interface Route {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * Runs autocannon with one request template whose setupRequest picks the operation from a
 * global counter, so the mix is exact across all clients; latencies are recorded per operation.
 */
async function mix(url: string, seconds: number, connections: number, next: (op: Op) => Route): Promise<MixFigures> {
  let i = 0;
  const lat: Record<Op, number[]> = { read: [], create: [], list: [] };
  let pending: Op = 'read';
  let non2xx = 0;
  let firstFailure: string | null = null;
  let done!: (r: autocannon.Result) => void;
  let fail!: (e: Error) => void;
  const finished = new Promise<autocannon.Result>((res, rej) => { done = res; fail = rej; });
  const inst = autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        setupRequest: (req, context) => {
          const op = opFor(i++);
          (context as { op?: Op }).op = op;
          const r = next(op);
          return { ...req, method: r.method, path: r.path, headers: { ...(r.headers ?? {}), ...(r.body ? { 'content-type': 'application/json' } : {}) }, body: r.body ?? '' };
        },
        onResponse: (status, body, context) => {
          pending = (context as { op?: Op }).op ?? 'read';
          if (status < 200 || status > 299) {
            non2xx++;
            firstFailure ??= `${pending}: HTTP ${status} ${String(body).slice(0, 300)}`;
          }
        },
      },
    ],
  }, (err, result) => (err ? fail(err as Error) : done(result)));
  // 'response' follows onResponse synchronously for the same client (autocannon's httpClient).
  inst.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
    lat[pending].push(ms);
  });
  const r = await finished;
  const all = [...lat.read, ...lat.create, ...lat.list];
  const ok = all.length - non2xx;
  const figs = (a: number[]) => ({ n: a.length, p50: round(percentile(a, 50)), p99: round(percentile(a, 99)) });
  if (r.errors + r.timeouts > 0) firstFailure ??= `${r.errors} socket errors, ${r.timeouts} timeouts`;
  return {
    seconds: r.duration,
    completed: all.length,
    rps: ok / r.duration,
    p50: round(percentile(all, 50)),
    p95: round(percentile(all, 95)),
    p99: round(percentile(all, 99)),
    byOp: { read: figs(lat.read), create: figs(lat.create), list: figs(lat.list) },
    errors: r.errors + r.timeouts,
    non2xx: Math.max(non2xx, r.non2xx),
    firstFailure,
  };
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

    // The generator for the real API. One create counter for the whole run (warm-up included),
    // so no company and period is ever used twice: company = c mod C, year = 1900 + c div C.
    let nRead = 0;
    let nCreate = 0;
    let nList = 0;
    const maxCreates = companies.length * 200; // years 1900..2099
    const apiNext = (op: Op): Route => {
      if (op === 'read') {
        const t = reads[nRead % reads.length]!;
        const k = t.owner ?? nRead % users.length;
        nRead++;
        return { method: 'GET', path: `/api/v1/predictions/annual/${t.id}`, headers: auth(k) };
      }
      if (op === 'create') {
        if (nCreate >= maxCreates) throw new Error('bench/mixed ran out of (company, year) pairs: add companies');
        const c = companies[nCreate % companies.length]!;
        const k = c.owner ?? nCreate % users.length;
        const reporting_year = String(1900 + Math.floor(nCreate / companies.length));
        nCreate++;
        return { method: 'POST', path: '/api/v1/predictions/annual', headers: auth(k), body: JSON.stringify({ company_id: c.id, reporting_year, ...RATIOS }) };
      }
      const k = nList++ % users.length;
      return { method: 'GET', path: '/api/v1/predictions/annual?limit=50', headers: auth(k) };
    };

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
    let bRead = 0;
    const bareNext = (op: Op): Route =>
      op === 'read' ? { method: 'GET', path: `/get/${bRead++ % reads.length}` }
        : op === 'create' ? { method: 'POST', path: '/insert', body: '{}' }
          : { method: 'GET', path: '/list' };

    // Warm-up (JIT, pools, model artifacts), then the measured runs.
    const warm = Math.min(3, SECONDS);
    const w1 = await mix(api.url, warm, CONNECTIONS, apiNext);
    const w2 = await mix(bareUrl, warm, CONNECTIONS, bareNext);
    for (const [name, f] of [['warm-up (API)', w1], ['warm-up (baseline)', w2]] as const) {
      if (f.errors > 0 || f.non2xx > 0) throw new Error(`bench/mixed ${name}: ${f.errors} errors, ${f.non2xx} non-2xx; first: ${f.firstFailure}`);
    }
    const base = await mix(bareUrl, SECONDS, CONNECTIONS, bareNext);
    const creates0 = nCreate;
    const m = await mix(api.url, SECONDS, CONNECTIONS, apiNext);
    if (m.errors > 0 || m.non2xx > 0) throw new Error(`bench/mixed FAILED: ${m.errors} errors/timeouts and ${m.non2xx} non-2xx responses; first: ${m.firstFailure}`);
    if (base.errors > 0 || base.non2xx > 0) throw new Error(`bench/mixed baseline: ${base.errors} errors, ${base.non2xx} non-2xx; first: ${base.firstFailure}`);
    const [{ stored }] = await a<[{ stored: number }]>`select count(*)::int as stored from annual_predictions where reporting_year <> ${SEED_YEAR}`;
    if (stored < nCreate - CONNECTIONS) throw new Error(`bench/mixed: ${nCreate} creates sent but only ${stored} stored`);

    process.stderr.write(
      `mixed: ${m.completed} requests in ${m.seconds} s, ${Math.round(m.rps)} req/s, p50 ${m.p50} ms p95 ${m.p95} ms p99 ${m.p99} ms, ` +
        `errors 0 (reads ${m.byOp.read.n}, creates ${m.byOp.create.n} [${nCreate - creates0} sent], lists ${m.byOp.list.n}); baseline ${Math.round(base.rps)} req/s p99 ${base.p99} ms\n`,
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
          requests: m.completed, reads: m.byOp.read.n, creates: m.byOp.create.n, lists: m.byOp.list.n,
          read_p99_ms: m.byOp.read.p99, create_p99_ms: m.byOp.create.p99, list_p99_ms: m.byOp.list.p99,
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
