// bench/auth: requests/s of an authenticated GET /api/v1/auth/me against a bare Fastify route
// answering the same kind of JSON, both measured in this run on this machine.
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { pathToFileURL } from 'node:url';
import { buildApp } from '../src/http/app.js';
import { buildServices } from '../src/entrypoints/services.js';
import { hashPassword } from '../src/services/passwords.js';
import { loadModels } from '../src/services/model-store.js';
import { BENCH_REDIS_URL, benchDatabase, closeAll, envNumber, load, printResults, type BenchResult } from './lib.js';

export const knobs = ['BENCH_SECONDS', 'BENCH_REDIS_URL'];
export const about = 'auth: GET /api/v1/auth/me with a bearer session (session lookup, rate limit, user cache) vs a bare Fastify route answering the same JSON with no I/O.';
const SECONDS = envNumber('BENCH_SECONDS', 5);

export async function run(): Promise<BenchResult[]> {
  const db = await benchDatabase();
  const log = pino({ level: 'silent' });
  const redis = new Redis(BENCH_REDIS_URL, { enableAutoPipelining: true, maxRetriesPerRequest: 2 });
  const bare = Fastify();
  let app: Awaited<ReturnType<typeof buildApp>> | null = null;
  try {
    const services = buildServices({ sql: db.appSql, redis, log, engine: await loadModels() }, { SESSION_TTL_SECONDS: 86_400, SESSION_ABSOLUTE_TTL_SECONDS: 2_592_000, RATE_LIMIT_LOGIN: 1000 });
    const limits = { default: 1e9, predictions: 1e9, bulk: 1e9, admin: 1e9, anonymous: 1e9, login: 1e9 };
    app = await buildApp({ log, sql: db.appSql, redis, services, rateLimits: limits });
    const [u] = await db.adminSql<{ id: string }[]>`insert into users (email, username, role) values ('bench@x.com', 'bench', 'user') returning id`;
    await db.adminSql`insert into user_credentials (user_id, password_hash) values (${u!.id}, ${await hashPassword('Bench-Password-1')})`;
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const login = await fetch(`${url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'bench', password: 'Bench-Password-1' }) });
    const { token } = (await login.json()) as { token: string };

    bare.get('/me', async () => ({ id: u!.id, email: 'bench@x.com', username: 'bench', role: 'user' }));
    const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });

    await load(`${url}/api/v1/auth/me`, { seconds: 1, headers: { authorization: `Bearer ${token}` } }); // warm-up
    const base = await load(`${bareUrl}/me`, { seconds: SECONDS });
    const me = await load(`${url}/api/v1/auth/me`, { seconds: SECONDS, headers: { authorization: `Bearer ${token}` } });
    if (me.non2xx > 0 || me.errors > 0) throw new Error(`bench/auth saw ${me.non2xx} non-2xx and ${me.errors} errors`);

    return [
      { scenario: 'auth.me (session + rate limit + user cache)', figure: me.rps, unit: 'req/s', baseline: base.rps, baseline_label: 'bare Fastify route, same JSON, no I/O', ratio: me.rps / base.rps, detail: { p50_ms: me.p50, p99_ms: me.p99, baseline_p99_ms: base.p99 } },
    ];
  } finally {
    await closeAll(() => db.drop(), async () => redis.disconnect(), app ? () => app!.close() : null, () => bare.close());
  }
}

// Exit explicitly: under heavy load postgres.js can keep a closed pool's socket referenced after end().
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printResults(await run());
  process.exit(0);
}
