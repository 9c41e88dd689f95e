// bench/auth: requests/s of an authenticated GET /api/v1/auth/me against a bare Fastify route
// answering the same kind of JSON, both measured in this run on this machine.
import Fastify from 'fastify';
import { pathToFileURL } from 'node:url';
import { benchDatabase, closeAll, createUsers, envNumber, load, printResults, signIn, startApp, type BenchResult, type RunningApp } from './lib.js';

export const knobs = ['BENCH_SECONDS', 'BENCH_REDIS_URL'];
export const about = 'auth: GET /api/v1/auth/me with a bearer session (session lookup, rate limit, user cache) vs a bare Fastify route answering the same JSON with no I/O.';
const SECONDS = envNumber('BENCH_SECONDS', 5);

export async function run(): Promise<BenchResult[]> {
  const db = await benchDatabase();
  const bare = Fastify();
  let running: RunningApp | null = null;
  try {
    running = await startApp(db);
    const url = running.url;
    const [u] = await createUsers(db, [{ username: 'bench', role: 'user' }]);
    const { token } = await signIn(url, u!);

    bare.get('/me', async () => ({ id: u!.id, email: 'bench@bench.example.com', username: 'bench', role: 'user' }));
    const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });

    await load(`${url}/api/v1/auth/me`, { seconds: 1, headers: { authorization: `Bearer ${token}` } }); // warm-up
    const base = await load(`${bareUrl}/me`, { seconds: SECONDS });
    const me = await load(`${url}/api/v1/auth/me`, { seconds: SECONDS, headers: { authorization: `Bearer ${token}` } });
    if (me.non2xx > 0 || me.errors > 0) throw new Error(`bench/auth saw ${me.non2xx} non-2xx and ${me.errors} errors`);

    return [
      { scenario: 'auth.me (session + rate limit + user cache)', figure: me.rps, unit: 'req/s', baseline: base.rps, baseline_label: 'bare Fastify route, same JSON, no I/O', ratio: me.rps / base.rps, detail: { p50_ms: me.p50, p99_ms: me.p99, baseline_p99_ms: base.p99 } },
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
