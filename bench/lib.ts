// Shared benchmark plumbing: a migrated scratch database, the real API on loopback, signed-in
// users, percentiles and result rows. The load itself comes from other processes (wrk.ts,
// client.ts), never from this one's event loop.
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { buildApp, type ApiServices } from '../src/http/app.js';
import { buildServices } from '../src/entrypoints/services.js';
import { hashPassword } from '../src/services/passwords.js';
import { loadModels } from '../src/services/model-store.js';
import { RollupCompactor } from '../src/services/rollup-compactor.js';
import setupTemplate from '../test/helpers/global-setup.js';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db.js';
import { TEST_REDIS_URL } from '../test/helpers/env.js';
import { lua, runWrk } from './wrk.js';

/**
 * One row of the results table. `figure` and `baseline` are in `unit`, both measured in the same
 * run on the same machine; `ratio` = figure / baseline. `baseline_label` says what the baseline
 * is; `detail` carries extra figures (p50/p95/p99 in ms, counts...).
 */
export interface BenchResult {
  scenario: string;
  figure: number;
  unit: string;
  baseline: number;
  ratio: number;
  baseline_label?: string;
  detail?: Record<string, number>;
}

export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? TEST_REDIS_URL;
export const RATIOS = { long_term_debt_to_total_capital: 35.2, total_debt_to_ebitda: 2.1, net_income_margin: 7.5, ebit_to_interest_expense: 6.3, return_on_assets: 4.9 };
export const BENCH_PASSWORD = 'Bench-Password-1';

const live = new Set<TestDatabase>();
let signalsHooked = false;

/**
 * A fresh database cloned from the migrated template; drop() it in a finally block. Named like the
 * test databases (accunode_t_<epoch>_...), so one left by a run killed with SIGKILL is dropped by a
 * later run's set-up; on SIGINT/SIGTERM the databases still open are dropped before exiting.
 */
export async function benchDatabase(opts: { poolSize?: number } = {}): Promise<TestDatabase> {
  await setupTemplate();
  const db = await createTestDatabase({ poolSize: opts.poolSize ?? 20 });
  live.add(db);
  if (!signalsHooked) {
    signalsHooked = true;
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        process.stderr.write(`bench: ${sig}, dropping ${live.size} scratch database(s)\n`);
        void Promise.allSettled([...live].map((d) => d.drop())).finally(() => process.exit(130));
      });
    }
  }
  const drop = db.drop;
  return {
    ...db,
    drop: async () => {
      live.delete(db);
      await drop();
    },
  };
}

/** Numeric environment knob with a default (BENCH_SECONDS=2 and the like, for smoke runs). */
export function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${v}"`);
  return n;
}

export interface RunningApp {
  url: string;
  app: FastifyInstance;
  redis: Redis;
  services: ApiServices;
  close(): Promise<void>;
}

/** The real API (real services, rate limits out of the way) listening on loopback. */
export async function startApp(db: TestDatabase): Promise<RunningApp> {
  const log = pino({ level: 'silent' });
  const redis = new Redis(BENCH_REDIS_URL, { enableAutoPipelining: true, maxRetriesPerRequest: 2 });
  const engine = await loadModels();
  const services = buildServices({ sql: db.appSql, redis, log, engine }, { SESSION_TTL_SECONDS: 86_400, SESSION_ABSOLUTE_TTL_SECONDS: 2_592_000, RATE_LIMIT_LOGIN: 1e9 });
  const limits = { default: 1e9, predictions: 1e9, bulk: 1e9, admin: 1e9, anonymous: 1e9, login: 1e9 };
  const app = await buildApp({ log, sql: db.appSql, redis, services, rateLimits: limits });
  // As in an api process: the rollup deltas its writes append are folded every second.
  const compactor = new RollupCompactor(() => db.appSql, log).start();
  try {
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    return {
      url,
      app,
      redis,
      services,
      close: async () => {
        await compactor.stop();
        await app.close();
        redis.disconnect();
      },
    };
  } catch (err) {
    await app.close().catch(() => {});
    redis.disconnect();
    throw err;
  }
}

/** Closes whatever was opened, in reverse order, never throwing (the first error is logged). */
export async function closeAll(...closers: Array<(() => Promise<unknown>) | undefined | null>): Promise<void> {
  for (const c of closers.reverse()) {
    if (!c) continue;
    try {
      await c();
    } catch (err) {
      process.stderr.write(`bench cleanup: ${(err as Error).message}\n`);
    }
  }
}

export interface BenchUser {
  id: string;
  username: string;
  token: string;
}

/** Users inserted as the owner (one password hash for all), then signed in through the API. */
export async function createUsers(
  db: TestDatabase,
  users: Array<{ username: string; role: string; tenantId?: string | null; organizationId?: string | null }>,
): Promise<Array<{ id: string; username: string }>> {
  const hash = await hashPassword(BENCH_PASSWORD);
  const out: Array<{ id: string; username: string }> = [];
  for (const u of users) {
    const [row] = await db.adminSql<{ id: string }[]>`
      insert into users (email, username, role, tenant_id, organization_id, is_verified)
      values (${u.username + '@bench.example.com'}, ${u.username}, ${u.role}, ${u.tenantId ?? null}, ${u.organizationId ?? null}, true) returning id`;
    await db.adminSql`insert into user_credentials (user_id, password_hash) values (${row!.id}, ${hash})`;
    out.push({ id: row!.id, username: u.username });
  }
  return out;
}

export async function signIn(url: string, user: { id: string; username: string }): Promise<BenchUser> {
  const res = await fetch(`${url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: user.username, password: BENCH_PASSWORD }) });
  if (res.status !== 200) throw new Error(`bench login of ${user.username}: HTTP ${res.status} ${await res.text()}`);
  const { token } = (await res.json()) as { token: string };
  return { ...user, token };
}

export interface LoadFigures {
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  non2xx: number;
  firstFailure: string | null;
}

/** wrk (in its own process) sending one fixed request for `seconds`. */
export async function load(url: string, opts: { connections?: number; seconds?: number; headers?: Record<string, string>; method?: string; body?: string } = {}): Promise<LoadFigures> {
  const u = new URL(url);
  const headers = { ...(opts.body ? { 'Content-Type': 'application/json' } : {}), ...(opts.headers ?? {}) };
  const h = `{${Object.entries(headers).map(([k, v]) => `[${lua(k)}] = ${lua(v)}`).join(', ')}}`;
  const r = await runWrk(u.origin, {
    connections: opts.connections ?? 50,
    seconds: opts.seconds ?? 5,
    script: { request: `return wrk.format(${lua(opts.method ?? 'GET')}, ${lua(u.pathname + u.search)}, ${h}${opts.body ? `, ${lua(opts.body)}` : ''})` },
  });
  return { rps: r.rps, p50: r.p50, p95: r.p95, p99: r.p99, errors: r.errors, non2xx: r.non2xx, firstFailure: r.firstFailure };
}

/** Nearest-rank percentile of unsorted samples (copied and sorted here). */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

export function printResults(results: BenchResult[]): void {
  for (const r of results) {
    const extra = r.detail ? ' ' + Object.entries(r.detail).map(([k, v]) => `${k}=${v}`).join(' ') : '';
    const fig = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toPrecision(3));
    console.log(`${r.scenario}: ${fig(r.figure)} ${r.unit} vs baseline ${fig(r.baseline)}${r.baseline_label ? ` (${r.baseline_label})` : ''} → ratio ${r.ratio.toFixed(3)}${extra}`);
  }
}
