import { randomInt } from 'node:crypto';
import type { RatingGrade } from '../../src/risk/implied-rating.js';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OutboxMailer } from '../../src/services/mailer.js';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { buildApp, type ApiServices } from '../../src/http/app.js';
import type { RateLimits } from '../../src/http/plugins/rate-limit.js';
import { buildServices } from '../../src/entrypoints/services.js';
import { hashPassword } from '../../src/services/passwords.js';
import { loadModels } from '../../src/services/model-store.js';
import type { RiskEngine } from '../../src/risk/index.js';
import type { TestDatabase } from './db.js';
import { TEST_APP_PG_PROXY, TEST_REDIS_URL, listenUrlFor } from './env.js';
import { createPool } from '../../src/db/pool.js';
import type { UserKey, World } from './fixtures.js';

export const TEST_PASSWORD = 'Correct-Horse-42!';

export interface TestApp {
  app: FastifyInstance;
  cacheRedis?: Redis;
  services: ApiServices;
  redis: Redis;
  /** This app's client address: rate limits of parallel test files never meet. */
  ip: string;
  request(opts: InjectOptions & { token?: string }): Promise<LightMyRequestResponse>;
  login(login: string, password?: string): Promise<string>;
  /** Where this app's e-mails are written (the development outbox mailer: a real delivery path). */
  outbox: string;
  /** The newest e-mail to this address, as written to the outbox (undefined: none). */
  lastMail(to: string): { file: string; text: string } | undefined;
  /** The verification token in the newest e-mail to this address. */
  verificationToken(to: string): string;
  /** Follows the verification link mailed to this address, as its owner would (POST /auth/verify). */
  verifyEmail(to: string): Promise<void>;
  close(): Promise<void>;
}

export async function createTestApp(
  db: TestDatabase,
  opts: { rateLimits?: Partial<RateLimits>; apiPlugins?: Array<(api: FastifyInstance) => Promise<void>>; loginLimit?: number; trustProxy?: string[]; cacheRedisUrl?: string; publicUrl?: string; verifyResendLimit?: number; metricsToken?: string; webhookAllowPrivateTargets?: boolean; exportStallMs?: number; ratingScale?: readonly RatingGrade[] } = {},
): Promise<TestApp> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  // A generous command timeout: on a loaded machine a 1 s timeout made the rate limiter skip
  // (skipOnError) and let an over-limit request through.
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 2, enableAutoPipelining: true, commandTimeout: 5000 });
  const cacheRedis = opts.cacheRedisUrl
    ? new Redis(opts.cacheRedisUrl, { maxRetriesPerRequest: 1, enableAutoPipelining: true, commandTimeout: 300, retryStrategy: () => 200 })
    : undefined;
  cacheRedis?.on('error', () => {});
  const outbox = mkdtempSync(path.join(tmpdir(), 'accunode-outbox-'));
  const services = buildServices(
    { sql: db.appSql, redis, log, engine: await engineOnce(), ...(cacheRedis ? { cacheRedis } : {}), mailer: new OutboxMailer(outbox, 'AccuNode <test@accunode.local>', log) },
    { SESSION_TTL_SECONDS: 86_400, SESSION_ABSOLUTE_TTL_SECONDS: 30 * 86_400, RATE_LIMIT_LOGIN: opts.loginLimit ?? 1000, PUBLIC_URL: 'https://accunode.test', RATE_LIMIT_VERIFY_RESEND: opts.verifyResendLimit ?? 1000, ...(opts.ratingScale ? { IMPLIED_RATING_SCALE: opts.ratingScale } : {}) },
  );
  if (TEST_APP_PG_PROXY) listenDirect(services, db);
  const rateLimits: RateLimits = { default: 100_000, predictions: 100_000, bulk: 100_000, admin: 100_000, anonymous: 100_000, login: 100_000, ...opts.rateLimits };
  const app = await buildApp({ log, sql: db.appSql, redis, services, rateLimits, modelsReady: () => true, ...(opts.metricsToken ? { metricsToken: opts.metricsToken } : {}), ...(opts.trustProxy ? { trustProxy: opts.trustProxy } : {}), ...(opts.publicUrl ? { publicUrl: opts.publicUrl } : {}), ...(opts.apiPlugins ? { apiPlugins: opts.apiPlugins } : {}), ...(opts.webhookAllowPrivateTargets ? { webhookAllowPrivateTargets: true } : {}), ...(opts.exportStallMs ? { exportStallMs: opts.exportStallMs } : {}) });
  await app.ready();
  const ip = `127.${randomInt(1, 255)}.${randomInt(0, 255)}.${randomInt(1, 255)}`;
  const request = (o: InjectOptions & { token?: string }) => {
    const { token, headers, ...rest } = o;
    return app.inject({ remoteAddress: ip, ...rest, headers: { ...(headers ?? {}), ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  };
  const lastMail = (to: string) => {
    const files = readdirSync(outbox).filter((f) => f.endsWith('.eml')).sort();
    for (const file of files.reverse()) {
      const text = readFileSync(path.join(outbox, file), 'utf8');
      if (new RegExp(`^To: ${to.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\r?$`, 'mi').test(text)) return { file, text };
    }
    return undefined;
  };
  const verificationToken = (to: string) => {
    const m = lastMail(to)?.text.match(/\/verify-email\?token=([A-Za-z0-9_-]+)/);
    if (!m) throw new Error(`no verification e-mail to ${to} in ${outbox}`);
    return m[1]!;
  };
  return {
    app,
    ...(cacheRedis ? { cacheRedis } : {}),
    outbox,
    lastMail,
    verificationToken,
    verifyEmail: async (to) => {
      const res = await request({ method: 'POST', url: '/api/v1/auth/verify', payload: { token: verificationToken(to) } });
      if (res.statusCode !== 200) throw new Error(`verifying ${to} failed: ${res.statusCode} ${res.body}`);
    },
    services,
    redis,
    ip,
    request,
    login: async (login, password = TEST_PASSWORD) => {
      const res = await request({ method: 'POST', url: '/api/v1/auth/login', payload: { login, password } });
      if (res.statusCode !== 200) throw new Error(`login ${login} failed: ${res.statusCode} ${res.body}`);
      return res.json().token as string;
    },
    close: async () => {
      await app.close();
      rmSync(outbox, { recursive: true, force: true });
      redis.disconnect();
      cacheRedis?.disconnect();
    },
  };
}

/**
 * Behind TEST_APP_PG_PROXY (PgBouncer in transaction mode, npm run test:pgbouncer) LISTEN on the
 * app pool would hear nothing: like DATABASE_LISTEN_URL does for `accunode api`, the revocation
 * listener asked for on db.appSql gets a direct connection of its own instead.
 */
function listenDirect(services: ApiServices, db: TestDatabase): void {
  const auth = services.auth;
  const listen = auth.listenForRevocations.bind(auth);
  auth.listenForRevocations = async (listenSql) => {
    if (listenSql !== db.appSql) return listen(listenSql);
    const direct = createPool(listenUrlFor(db.name), { max: 1, applicationName: 'accunode-test-listen' });
    const sub = await listen(direct);
    return {
      unlisten: async () => {
        await sub.unlisten().catch(() => {});
        await direct.end({ timeout: 5 });
      },
    };
  };
}

let engine: Promise<RiskEngine> | null = null;
export function engineOnce(): Promise<RiskEngine> {
  engine ??= loadModels();
  return engine;
}

let hashed: Promise<string> | null = null;
/** Gives every user of the world the same known password. */
export async function setWorldPasswords(db: TestDatabase, world: World): Promise<void> {
  hashed ??= hashPassword(TEST_PASSWORD);
  const h = await hashed;
  for (const u of Object.values(world.users)) {
    await db.adminSql`insert into user_credentials (user_id, password_hash) values (${u.id}, ${h}) on conflict (user_id) do update set password_hash = excluded.password_hash`;
  }
}

export async function tokensFor(t: TestApp, keys: UserKey[]): Promise<Record<UserKey, string>> {
  const out = {} as Record<UserKey, string>;
  for (const k of keys) out[k] = await t.login(k);
  return out;
}

export const ALL_USERS: UserKey[] = ['super', 'taA', 'oaA1', 'omA1', 'omA1b', 'omA2', 'uA', 'taB', 'oaB1', 'omB1'];

export interface WorldApp {
  db: TestDatabase;
  w: World;
  t: TestApp;
  tok: Record<UserKey, string>;
  /** A JSON request under /api/v1 as one of the world's users. */
  api(method: string, url: string, who: UserKey, payload?: unknown): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** The usual set-up of an API test file: a database, the two-tenant world, an app, and tokens. */
export async function createWorldApp(users: UserKey[] = ALL_USERS, opts: Parameters<typeof createTestApp>[1] = {}): Promise<WorldApp> {
  const { createTestDatabase } = await import('./db.js');
  const { buildWorld } = await import('./fixtures.js');
  const db = await createTestDatabase();
  const w = await buildWorld(db.adminSql);
  await setWorldPasswords(db, w);
  const t = await createTestApp(db, opts);
  const tok = await tokensFor(t, users);
  return {
    db,
    w,
    t,
    tok,
    api: (method, url, who, payload) =>
      t.request({ method: method as 'GET', url: `/api/v1${url}`, token: tok[who], ...(payload === undefined ? {} : { payload: payload as object }) }),
    close: async () => {
      await t.close();
      await db.drop();
    },
  };
}
