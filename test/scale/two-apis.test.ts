// Scale-out (npm run test:scale): two `accunode api` and two `accunode worker` processes against
// one PostgreSQL and one Redis. Sessions and rate limits are global (a token from api 1 works on
// api 2; a limit of L across both lets exactly L through); each bulk job runs once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRows, toCsv } from '../bulk/helpers.js';
import { AofRedis, deploymentEnv, login, startDatabase, startRole, uploadBulk, waitJobs, type Cluster, type RoleProcess } from './harness.js';

const LIMIT = 40;
let db: Cluster;
let redis: AofRedis;
let apis: RoleProcess[] = [];
let workers: RoleProcess[] = [];
const figures: Record<string, unknown> = {};

beforeAll(async () => {
  db = await startDatabase();
  redis = await AofRedis.start();
  // DATABASE_LISTEN_URL: the revocation LISTEN on a connection of its own (direct to PostgreSQL
  // behind PgBouncer; here the same server as DATABASE_URL).
  const env = deploymentEnv(db, redis.url, { RATE_LIMIT_DEFAULT: String(LIMIT), WORKER_QUEUES: 'bulk', BULK_CHUNK_ROWS: '200', DATABASE_LISTEN_URL: db.appUrl });
  // Both apis share BULK_UPLOAD_DIR with the workers (one deployment, one shared volume).
  apis = await Promise.all([startRole('api', env), startRole('api', env)]);
  workers = await Promise.all([startRole('worker', env), startRole('worker', env)]);
}, 180_000);

afterAll(async () => {
  console.log('scale-out:', JSON.stringify(figures, null, 2));
  await Promise.all([...apis, ...workers].map((p) => p.stop()));
  await redis?.destroy();
  await db?.close();
});

describe('two apis and two workers on one PostgreSQL and Redis', () => {
  it('a session made on api 1 works on api 2; logging out on api 2 ends it on api 1', async () => {
    const token = await login(apis[0]!.base, 'omA2');
    const me2 = await fetch(`${apis[1]!.base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(me2.status).toBe(200);
    expect(((await me2.json()) as { id?: string; user?: { id: string } }).id ?? '').toBeTruthy();
    const out = await fetch(`${apis[1]!.base}/api/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(out.status).toBeLessThan(300);
    const me1 = await fetch(`${apis[0]!.base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(me1.status).toBe(401);
    figures.sessions = { made_on: 'api1', used_on_api2: me2.status, after_logout_on_api2_api1_says: me1.status };
  });

  it('each api holds its session-revocation LISTEN on the DATABASE_LISTEN_URL connection', async () => {
    const rows = await db.adminSql<Array<{ application_name: string; query: string }>>`
      select application_name, query from pg_stat_activity where usename = 'app_user' and query ilike 'listen%'`;
    figures.listen = rows.map((r) => `${r.application_name}: ${r.query}`);
    expect(rows).toHaveLength(2);
    for (const r of rows) expect(r).toMatchObject({ application_name: 'accunode-listen' });
  });

  it(`a limit of ${LIMIT} per hour across both apis lets exactly ${LIMIT} through`, async () => {
    const token = await login(apis[0]!.base, 'uA');
    const statuses = await Promise.all(
      Array.from({ length: LIMIT + 20 }, (_, i) => fetch(`${apis[i % 2]!.base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      })),
    );
    const ok = statuses.filter((s) => s === 200).length;
    const limited = statuses.filter((s) => s === 429).length;
    figures.rate_limit = { limit: LIMIT, sent: statuses.length, ok, limited, other: statuses.length - ok - limited };
    expect(ok).toBe(LIMIT);
    expect(limited).toBe(20);
  });

  it('bulk jobs submitted through both apis each run exactly once on the two workers', async () => {
    const token = await login(apis[0]!.base, 'oaA1');
    const N = 8;
    const ids = await Promise.all(
      Array.from({ length: N }, (_, i) => uploadBulk(apis[i % 2]!.base, token, toCsv('annual', makeRows('annual', 600, { seed: 500 + i, symbolPrefix: `S${i}J` })))),
    );
    expect(ids.every(Boolean)).toBe(true);
    const jobs = await waitJobs(db.adminSql, ids as string[], 120_000);
    const rows = await db.adminSql<Array<{ prefix: string; n: number; distinct_symbols: number }>>`
      select substr(c.symbol, 1, 3) as prefix, count(*)::int as n, count(distinct c.symbol)::int as distinct_symbols
      from annual_predictions p join companies c on c.id = p.company_id
      where c.created_by = ${db.world.users.oaA1.id} and c.symbol ~ '^S[0-9]J' group by 1 order by 1`;
    figures.jobs = { submitted: N, statuses: jobs.map((j) => j.status), attempts: jobs.map((j) => j.attempts), rows_per_job: rows.map((r) => r.n) };
    expect(jobs.every((j) => j.status === 'completed' && j.attempts === 1 && j.rows_succeeded === 600)).toBe(true);
    expect(rows).toHaveLength(N);
    for (const r of rows) expect(r).toMatchObject({ n: 600 });
  }, 180_000);
});
