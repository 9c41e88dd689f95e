import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { createTestApp, setWorldPasswords, type TestApp } from '../helpers/app.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { loginLimitKey } from '../../src/services/auth.js';

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
    // An account of this test's own: the per-account counter lives in the shared Redis, where
    // other test files log in as the fixture users at the same time.
    const login = `guessme_${Math.random().toString(36).slice(2, 10)}`;
    const [u] = await db.adminSql<{ id: string }[]>`insert into users (email, username, role) values (${login + '@example.com'}, ${login}, 'user') returning id`;
    await db.adminSql`insert into user_credentials (user_id, password_hash) select ${u!.id}, password_hash from user_credentials where user_id = ${w.users.omB1.id}`;
    const codes = [];
    for (let i = 0; i < 7; i++) {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: `127.50.${i}.${Math.floor(Math.random() * 250) + 1}`, payload: { login, password: `guess-${i}` } });
      codes.push(res.statusCode);
      if (res.statusCode === 429) expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    expect(codes).toEqual([401, 401, 401, 401, 401, 429, 429]);
    // Even the right password waits out the window, whatever the case of the login.
    const right = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: '127.51.0.1', payload: { login: login.toUpperCase(), password: 'Correct-Horse-42!' } });
    expect(right.statusCode).toBe(429);
    await t.redis.del(loginLimitKey(login));
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
