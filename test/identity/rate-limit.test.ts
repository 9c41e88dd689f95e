import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { createTestApp, setWorldPasswords, TEST_PASSWORD, type TestApp } from '../helpers/app.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { LOGIN_BACKOFF, loginKeys, loginSubject } from '../../src/services/login-throttle.js';

let db: TestDatabase;
let w: World;
const apps: TestApp[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  w = await buildWorld(db.adminSql);
  await setWorldPasswords(db, w);
});
afterAll(async () => {
  for (const a of apps) await a.close();
  await db.drop();
});

const randomIp = () => `127.${60 + Math.floor(Math.random() * 150)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 250)}`;

/**
 * An account of the test's own: the throttle's counters live in the shared Redis, where other
 * test files log in as the fixture users at the same time.
 */
async function ownAccount(): Promise<{ id: string; login: string; email: string }> {
  const login = `guessme_${Math.random().toString(36).slice(2, 10)}`;
  const email = `${login}@example.com`;
  const [u] = await db.adminSql<{ id: string }[]>`insert into users (email, username, role) values (${email}, ${login}, 'user') returning id`;
  await db.adminSql`insert into user_credentials (user_id, password_hash) select ${u!.id}, password_hash from user_credentials where user_id = ${w.users.omB1.id}`;
  return { id: u!.id, login, email };
}

async function app(opts: Parameters<typeof createTestApp>[1]) {
  const a = await createTestApp(db, opts);
  apps.push(a);
  return a;
}

describe('rate limits', () => {
  it('N parallel requests against a limit L let exactly L through, counted in rate_limit:{user_id}:{endpoint}', async () => {
    const t = await app({ rateLimits: { admin: 10 } });
    const token = await t.login('taA');
    await t.redis.del(`rate_limit:${w.users.taA.id}:GET /api/v1/users`);
    const res = await Promise.all(Array.from({ length: 25 }, () => t.request({ method: 'GET', url: '/api/v1/users', token })));
    const codes = res.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 200)).toHaveLength(10);
    expect(codes.filter((c) => c === 429)).toHaveLength(15);
    const ok = res.find((r) => r.statusCode === 200)!;
    expect(ok.headers['ratelimit-limit']).toBe('10');
    expect(Number(ok.headers['ratelimit-remaining'])).toBeLessThan(10);
    expect(Number(ok.headers['ratelimit-reset'])).toBeGreaterThan(3500);
    const limited = res.find((r) => r.statusCode === 429)!;
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(3500);
    expect(limited.json().error.code).toBe('rate_limited');
    const key = `rate_limit:${w.users.taA.id}:GET /api/v1/users`;
    expect(await t.redis.get(key)).toBe('25');
    expect(await t.redis.ttl(key)).toBeGreaterThan(3590);
    // Another endpoint (same route pattern for every id) has its own counter.
    expect((await t.request({ method: 'GET', url: `/api/v1/users/${w.users.taA.id}`, token })).statusCode).toBe(200);
    expect(await t.redis.get(`rate_limit:${w.users.taA.id}:GET /api/v1/users/:id`)).toBe('1');
  });

  it('unauthenticated requests are keyed by client IP', async () => {
    const t = await app({ rateLimits: { anonymous: 3 } });
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await t.request({ method: 'GET', url: '/api/v1/auth/me' })).statusCode);
    expect(codes).toEqual([401, 401, 401, 429, 429]);
    expect(await t.redis.get(`rate_limit:ip:${t.ip}:GET /api/v1/auth/me`)).toBe('5');
    // A different address has its own budget.
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', remoteAddress: '127.9.9.' + (1 + Math.floor(Math.random() * 250)) })).statusCode).toBe(401);
  });

  it('password guessing against one account is throttled whatever the address', async () => {
    const t = await app({ loginLimit: 5 });
    const { login } = await ownAccount();
    const codes = [];
    for (let i = 0; i < 7; i++) {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: `127.50.${i}.${Math.floor(Math.random() * 250) + 1}`, payload: { login, password: `guess-${i}` } });
      codes.push(res.statusCode);
      if (res.statusCode === 429) expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    expect(codes).toEqual([401, 401, 401, 401, 401, 429, 429]);
    // An address that never signed in to the account waits out the hour, right password or not,
    // whatever the case of the login.
    const right = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: '127.51.0.1', payload: { login: login.toUpperCase(), password: TEST_PASSWORD } });
    expect(right.statusCode).toBe(429);
    expect(right.json().error.message).toMatch(/device that has signed in/);
  });

  it('the e-mail address and the username of one account share one budget', async () => {
    const t = await app({ loginLimit: 4 });
    const { login, email } = await ownAccount();
    const codes = [];
    for (let i = 0; i < 6; i++) {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: randomIp(), payload: { login: i % 2 ? email.toUpperCase() : login, password: `guess-${i}` } });
      codes.push(res.statusCode);
    }
    expect(codes).toEqual([401, 401, 401, 401, 429, 429]);
  });

  it('the owner still signs in from an address it used before while the account is under attack', async () => {
    const t = await app({ loginLimit: 3 });
    const { login, id } = await ownAccount();
    const home = randomIp();
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: home, payload: { login, password: TEST_PASSWORD } })).statusCode).toBe(200);
    expect(await t.redis.zscore(loginKeys.known(loginSubject(login, id)), home)).not.toBeNull();
    for (let i = 0; i < 6; i++) await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: randomIp(), payload: { login, password: `guess-${i}` } });
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: randomIp(), payload: { login, password: TEST_PASSWORD } })).statusCode).toBe(429);
    const owner = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: home, payload: { login: login + '@example.com', password: TEST_PASSWORD } });
    expect(owner.statusCode, owner.body).toBe(200);
  });

  it('repeated failures from one address back off exponentially, and a success clears them', async () => {
    const t = await app({ loginLimit: 1000 });
    const { login, id } = await ownAccount();
    const ip = randomIp();
    const key = loginKeys.backoff(loginSubject(login, id), ip);
    const attempt = (password: string) => t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: ip, payload: { login, password } });
    // The first attempts are free (typos), then each one waits twice as long as the last.
    const free = [];
    for (let i = 0; i < LOGIN_BACKOFF.FREE_ATTEMPTS; i++) free.push((await attempt(`guess-${i}`)).statusCode);
    expect(free).toEqual(Array(LOGIN_BACKOFF.FREE_ATTEMPTS).fill(401));
    const waits = [];
    for (let i = 0; i < 4; i++) {
      const refused = await attempt(TEST_PASSWORD);
      expect(refused.statusCode).toBe(429);
      waits.push(Number(refused.headers['retry-after']));
      // The wait elapses (moved, not slept).
      await t.redis.hset(key, 'next', 0);
      expect((await attempt(`again-${i}`)).statusCode).toBe(401);
    }
    expect(waits).toEqual([1, 2, 4, 8]);
    // Another address is not held back by this one's failures.
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: randomIp(), payload: { login, password: TEST_PASSWORD } })).statusCode).toBe(200);
    await t.redis.hset(key, 'next', 0);
    expect((await attempt(TEST_PASSWORD)).statusCode).toBe(200);
    expect(await t.redis.exists(key)).toBe(0);
    expect((await attempt('one-more-typo')).statusCode).toBe(401);
    expect((await attempt(TEST_PASSWORD)).statusCode).toBe(200);
  });

  it('a login for no account is throttled exactly like one for an account', async () => {
    const t = await app({ loginLimit: 1000 });
    const ip = randomIp();
    const ghost = `ghost_${Math.random().toString(36).slice(2, 10)}@example.com`;
    const codes = [];
    for (let i = 0; i <= LOGIN_BACKOFF.FREE_ATTEMPTS; i++) {
      codes.push((await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: ip, payload: { login: i % 2 ? ghost.toUpperCase() : ghost, password: 'x' } })).statusCode);
    }
    expect(codes).toEqual([...Array(LOGIN_BACKOFF.FREE_ATTEMPTS).fill(401), 429]);
    expect(await t.redis.exists(loginKeys.backoff(loginSubject(ghost, null), ip))).toBe(1);
  });

  it('login and register count by IP whatever Authorization header they carry', async () => {
    const t = await app({ rateLimits: { login: 2 } });
    // Seven valid tokens of seven users (from an app of ordinary limits: same database and Redis).
    const issuer = await app({});
    const ip = randomIp();
    const tokens = [];
    for (const u of ['omA1', 'omA1b', 'omA2', 'oaA1', 'taA', 'uA', 'omB1'] as const) tokens.push(await issuer.login(u));
    await t.redis.del(`rate_limit:ip:${ip}:POST /api/v1/auth/login`);
    const codes = [];
    // Fresh logins each time: only the route's per-IP limit (login x 3 = 6 an hour) can refuse.
    for (const token of tokens) {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: ip, headers: { authorization: `Bearer ${token}` }, payload: { login: `nobody_${Math.random().toString(36).slice(2)}`, password: 'x' } });
      codes.push(res.statusCode);
    }
    expect(codes).toEqual([401, 401, 401, 401, 401, 401, 429]);
    expect(await t.redis.get(`rate_limit:ip:${ip}:POST /api/v1/auth/login`)).toBe('7');
    expect(await t.redis.exists(`rate_limit:${w.users.omA1.id}:POST /api/v1/auth/login`)).toBe(0);
    const reg = await t.app.inject({ method: 'POST', url: '/api/v1/auth/register', remoteAddress: ip, headers: { authorization: `Bearer ${tokens[0]}` }, payload: { email: 'x@example.com', username: 'x', password: 'x' } });
    expect(reg.statusCode).toBe(422);
    expect(await t.redis.get(`rate_limit:ip:${ip}:POST /api/v1/auth/register`)).toBe('1');
  });

  it('X-Forwarded-For is trusted only from the configured proxies', async () => {
    const untrusted = await app({ rateLimits: { anonymous: 1000 } });
    await untrusted.request({ method: 'GET', url: '/api/v1/auth/me', headers: { 'x-forwarded-for': '203.0.113.7' } });
    expect(await untrusted.redis.get(`rate_limit:ip:${untrusted.ip}:GET /api/v1/auth/me`)).not.toBeNull();
    expect(await untrusted.redis.exists('rate_limit:ip:203.0.113.7:GET /api/v1/auth/me')).toBe(0);
    const proxied = await app({ rateLimits: { anonymous: 1000 } });
    const viaProxy = await createTestApp(db, { trustProxy: [proxied.ip] });
    apps.push(viaProxy);
    const client = `198.51.100.${Math.floor(Math.random() * 250) + 1}`;
    await viaProxy.app.inject({ method: 'GET', url: '/api/v1/auth/me', remoteAddress: proxied.ip, headers: { 'x-forwarded-for': client } });
    expect(await viaProxy.redis.get(`rate_limit:ip:${client}:GET /api/v1/auth/me`)).toBe('1');
    await viaProxy.redis.del(`rate_limit:ip:${client}:GET /api/v1/auth/me`);
  });

  it('every route is limited, health included', async () => {
    const t = await app({ rateLimits: { anonymous: 1000 } });
    const res = await t.request({ method: 'GET', url: '/health' });
    expect(res.headers['ratelimit-limit']).toBeDefined();
    const docs = await t.request({ method: 'GET', url: '/docs/json' });
    expect(docs.headers['ratelimit-limit']).toBeDefined();
  });
});
