// Cookie sessions for the web app: POST /auth/login?cookie=true sets an httpOnly SameSite=Strict
// cookie (Secure over https) and leaves the token out of the body; cookie-authenticated requests
// that change something need X-Requested-With and a same-site Origin (CSRF); logout clears the
// cookie; logout-all ends every session.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { createTestApp, setWorldPasswords, TEST_PASSWORD, type TestApp } from '../helpers/app.js';

let db: TestDatabase;
let world: World;
let t: TestApp;

beforeAll(async () => {
  db = await createTestDatabase();
  world = await buildWorld(db.adminSql);
  await setWorldPasswords(db, world);
  t = await createTestApp(db, { trustProxy: ['127.0.0.0/8'] });
});
afterAll(async () => {
  await t?.close();
  await db?.drop();
});

async function cookieLogin(login: string, headers: Record<string, string> = {}) {
  const res = await t.request({ method: 'POST', url: '/api/v1/auth/login?cookie=true', payload: { login, password: TEST_PASSWORD }, headers });
  expect(res.statusCode, res.body).toBe(200);
  const set = String(res.headers['set-cookie']);
  const value = /accunode_session=([^;]+)/.exec(set)![1]!;
  return { res, set, cookie: `accunode_session=${value}` };
}

describe('cookie login', () => {
  it('sets an httpOnly, SameSite=Strict, Path=/ cookie with an expiry; the body has no token', async () => {
    const { res, set } = await cookieLogin('omA1');
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).toMatch(/Path=\//);
    expect(set).toMatch(/Max-Age=\d+/);
    expect(set).not.toMatch(/Secure/); // plain http here
    const body = res.json();
    expect(body.token).toBeUndefined();
    expect(body.cookie).toBe(true);
    expect(body.user.username).toBe('omA1');
  });

  it('marks the cookie Secure when the request came over https (trusted proxy)', async () => {
    const { set } = await cookieLogin('omA1', { 'x-forwarded-proto': 'https' });
    expect(set).toMatch(/; Secure/);
  });

  it('marks the cookie Secure whenever the public URL is https, even on a request that looks like plain http', async () => {
    // A TLS-terminating proxy that is not in TRUST_PROXY: the app sees http, the browser is on https.
    const behind = await createTestApp(db, { publicUrl: 'https://risk.example.com' });
    try {
      const res = await behind.request({ method: 'POST', url: '/api/v1/auth/login?cookie=true', payload: { login: 'omA1', password: TEST_PASSWORD } });
      expect(res.statusCode, res.body).toBe(200);
      expect(String(res.headers['set-cookie'])).toMatch(/; Secure/);
      const cookie = /accunode_session=([^;]+)/.exec(String(res.headers['set-cookie']))![0];
      const out = await behind.request({ method: 'POST', url: '/api/v1/auth/logout', headers: { cookie, 'x-requested-with': 'fetch' } });
      expect(out.statusCode).toBe(204);
      expect(String(out.headers['set-cookie'])).toMatch(/Max-Age=0.*; Secure|; Secure.*Max-Age=0/);
    } finally {
      await behind.close();
    }
  });

  it('the plain login still returns the token and sets no cookie', async () => {
    const res = await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: 'omA1', password: TEST_PASSWORD } });
    expect(res.statusCode).toBe(200);
    expect(typeof res.json().token).toBe('string');
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('the cookie authenticates reads', async () => {
    const { cookie } = await cookieLogin('omA1');
    const me = await t.request({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie } });
    expect(me.statusCode).toBe(200);
    expect(me.json().id).toBe(world.users.omA1.id);
  });
});

describe('CSRF on cookie-authenticated writes', () => {
  const body = { company: { symbol: 'CSRF1', name: 'Csrf Corp' }, reporting_year: '2024', net_income_margin: 5, return_on_assets: 3, total_debt_to_ebitda: 2 };

  it('refuses a write without X-Requested-With (403), and nothing is created', async () => {
    const { cookie } = await cookieLogin('omA1');
    const res = await t.request({ method: 'POST', url: '/api/v1/predictions/annual', headers: { cookie }, payload: body });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.message).toMatch(/X-Requested-With/);
    const [n] = await db.adminSql<[{ n: number }]>`select count(*)::int as n from companies where symbol = 'CSRF1'`;
    expect(n.n).toBe(0);
  });

  it('refuses a write from another origin even with the header', async () => {
    const { cookie } = await cookieLogin('omA1');
    const res = await t.request({ method: 'POST', url: '/api/v1/predictions/annual', headers: { cookie, 'x-requested-with': 'x', origin: 'https://evil.example', host: 'localhost:80' }, payload: body });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.message).toMatch(/origin/);
  });

  it('accepts a write with the header from the same origin', async () => {
    const { cookie } = await cookieLogin('omA1');
    const res = await t.request({ method: 'POST', url: '/api/v1/predictions/annual', headers: { cookie, 'x-requested-with': 'accunode-web', origin: 'http://localhost:80', host: 'localhost:80' }, payload: body });
    expect(res.statusCode, res.body).toBe(201);
  });

  it('does not apply to bearer-token requests', async () => {
    const token = await t.login('omA1');
    const res = await t.request({ method: 'POST', url: '/api/v1/predictions/annual', token, payload: { ...body, company: { symbol: 'CSRF2', name: 'Csrf Two' } } });
    expect(res.statusCode, res.body).toBe(201);
  });

  it('reads need no header', async () => {
    const { cookie } = await cookieLogin('omA1');
    expect((await t.request({ method: 'GET', url: '/api/v1/portfolio', headers: { cookie } })).statusCode).toBe(200);
  });
});

describe('logout', () => {
  it('clears the cookie and ends the session', async () => {
    const { cookie } = await cookieLogin('omA1b');
    const out = await t.request({ method: 'POST', url: '/api/v1/auth/logout', headers: { cookie, 'x-requested-with': 'accunode-web' } });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/accunode_session=;.*Max-Age=0/);
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie } })).statusCode).toBe(401);
  });

  it('logout-all ends every session of the user, this one included, and no one else\'s', async () => {
    const a = await t.login('omA2');
    const b = await t.login('omA2');
    const { cookie } = await cookieLogin('omA2');
    const other = await t.login('omA1');
    const res = await t.request({ method: 'POST', url: '/api/v1/auth/logout-all', headers: { cookie, 'x-requested-with': 'accunode-web' } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().revoked).toBeGreaterThanOrEqual(3);
    expect(String(res.headers['set-cookie'])).toMatch(/Max-Age=0/);
    for (const token of [a, b]) expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token })).statusCode).toBe(401);
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie } })).statusCode).toBe(401);
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token: other })).statusCode).toBe(200);
  });

  it('logout-all needs a session', async () => {
    expect((await t.request({ method: 'POST', url: '/api/v1/auth/logout-all' })).statusCode).toBe(401);
  });
});
