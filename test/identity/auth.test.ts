import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { createTestApp, type TestApp } from '../helpers/app.js';

let db: TestDatabase;
let t: TestApp;
let unlisten: () => Promise<void>;

beforeAll(async () => {
  db = await createTestDatabase();
  t = await createTestApp(db);
  unlisten = (await t.services.auth.listenForRevocations(db.appSql)).unlisten;
});
afterAll(async () => {
  await unlisten();
  await t.close();
  await db.drop();
});

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
let n = 0;
async function register(overrides: Record<string, unknown> = {}) {
  n++;
  const body = { email: `analyst${n}-${Date.now()}@example.com`, username: `analyst${n}_${Date.now() % 100000}`, password: 'Sturdy-Password-9', first_name: 'Ana', ...overrides };
  const reg = await t.request({ method: 'POST', url: '/api/v1/auth/register', payload: body });
  expect(reg.statusCode, reg.body).toBe(202);
  // Registration issues no session (it would tell a new account from a taken address): sign in.
  const res = await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: body.email, password: body.password } });
  return { res, body, reg };
}

async function until(fn: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

describe('accounts and sessions', () => {
  it('register → login → me → logout → me is 401', async () => {
    const { res, body, reg } = await register();
    expect(JSON.stringify(reg.json())).not.toMatch(/password|hash|token/i);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().user).toMatchObject({ email: body.email, username: body.username, role: 'user', tenant_id: null });
    expect(JSON.stringify(res.json())).not.toMatch(/password|hash/i);
    const login = await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: body.username, password: body.password } });
    expect(login.statusCode).toBe(200);
    const { token, expires_at } = login.json();
    expect(Buffer.from(token, 'base64url').length).toBeGreaterThanOrEqual(32);
    expect(new Date(expires_at).getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    const me = await t.request({ method: 'GET', url: '/api/v1/auth/me', token });
    expect(me.statusCode).toBe(200);
    expect(me.json().email).toBe(body.email);
    // login by email works too, case-insensitively
    const byEmail = await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: body.email.toUpperCase(), password: body.password } });
    expect(byEmail.statusCode).toBe(200);
    const out = await t.request({ method: 'POST', url: '/api/v1/auth/logout', token });
    expect(out.statusCode).toBe(204);
    const after = await t.request({ method: 'GET', url: '/api/v1/auth/me', token });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe('unauthorized');
    // the other session is unaffected
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token: byEmail.json().token })).statusCode).toBe(200);
  });

  it('stores only a hash: session:{sha256(token)} with a 24 h TTL, and a durable row', async () => {
    const { res } = await register();
    const token = res.json().token as string;
    const ttl = await t.redis.ttl(`session:${sha(token)}`);
    expect(ttl).toBeGreaterThan(86_400 - 10);
    expect(ttl).toBeLessThanOrEqual(86_400);
    const raw = await t.redis.get(`session:${sha(token)}`);
    expect(raw).not.toContain(token);
    const [row] = await db.adminSql`select * from user_sessions where token_hash = ${sha(token)}`;
    expect(row).toBeDefined();
    const everything = JSON.stringify(await db.adminSql`select * from user_sessions`) + JSON.stringify(await db.adminSql`select * from audit_logs`);
    expect(everything).not.toContain(token);
  });

  it('a session key written to Redis without the database\'s signature mints nothing', async () => {
    const { res } = await register();
    const token = res.json().token as string;
    const me = (await t.request({ method: 'GET', url: '/api/v1/auth/me', token })).json();
    const [admin] = await db.adminSql<{ id: string }[]>`insert into users (email, username, role, is_verified) values (${`root-${Date.now()}@example.com`}, ${`root${Date.now() % 100000}`}, 'super_admin', true) returning id`;
    const key = `session:${sha(token)}`;
    const real = JSON.parse((await t.redis.get(key))!);
    expect(real.mac).toEqual(expect.any(String));
    // Someone with Redis access: a made-up token as a super admin, and this user's entry edited
    // into the super admin, with the old signature or none.
    const forged = 'f'.repeat(43);
    const body = { sid: real.sid, uid: admin!.id, role: 'super_admin', tenant: null, org: null, exp: Date.now() + 3_600_000, w: Date.now() };
    await t.redis.set(`session:${sha(forged)}`, JSON.stringify(body), 'EX', 3600);
    await t.redis.set(key, JSON.stringify({ ...body, mac: real.mac }), 'EX', 3600);
    t.services.auth.sessions.forgetLocal();
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token: forged })).statusCode).toBe(401);
    // The edited entry is ignored: the real session (from the database) is who this token is.
    const after = await t.request({ method: 'GET', url: '/api/v1/auth/me', token });
    expect(after.statusCode).toBe(200);
    expect(after.json()).toMatchObject({ id: me.id, role: me.role });
    // A signature is bound to its token: a valid entry copied under another token's key is refused.
    await t.redis.set(`session:${sha(forged)}`, (await t.redis.get(key))!, 'EX', 3600);
    t.services.auth.sessions.forgetLocal();
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token: forged })).statusCode).toBe(401);
  });

  it('a session Redis lost keeps working and is rebuilt', async () => {
    const { res } = await register();
    const token = res.json().token as string;
    await t.redis.del(`session:${sha(token)}`);
    t.services.auth.sessions.forgetLocal();
    const me = await t.request({ method: 'GET', url: '/api/v1/auth/me', token });
    expect(me.statusCode).toBe(200);
    expect(await t.redis.exists(`session:${sha(token)}`)).toBe(1);
    expect(await t.redis.ttl(`session:${sha(token)}`)).toBeGreaterThan(86_000);
  });

  it('revoking in the database wins over a stale Redis entry', async () => {
    const { res } = await register();
    const token = res.json().token as string;
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token })).statusCode).toBe(200);
    await db.adminSql`update user_sessions set revoked_at = now() where token_hash = ${sha(token)}`;
    // The NOTIFY reaches the listener and the Redis copy goes.
    expect(await until(async () => (await t.redis.exists(`session:${sha(token)}`)) === 0)).toBe(true);
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token })).statusCode).toBe(401);
  });

  it('even without the notification, a revoked session is refused at its next database check', async () => {
    const { res } = await register();
    const token = res.json().token as string;
    const key = `session:${sha(token)}`;
    const cached = JSON.parse((await t.redis.get(key))!);
    // Stale entry left behind (the listener could have been down), last checked 2 minutes ago.
    await t.redis.set(key, await t.services.auth.sessions.seal(sha(token), { ...cached, w: Date.now() - 120_000 }), 'EX', 86_400);
    await db.adminSql`alter table user_sessions disable trigger trg_user_sessions_revoked`;
    try {
      await db.adminSql`update user_sessions set revoked_at = now() where token_hash = ${sha(token)}`;
    } finally {
      await db.adminSql`alter table user_sessions enable trigger trg_user_sessions_revoked`;
    }
    expect(await t.redis.exists(key)).toBe(1);
    // As another api process would see it (it never held this session in memory).
    t.services.auth.sessions.forgetLocal();
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token })).statusCode).toBe(401);
    expect(await t.redis.exists(key)).toBe(0);
  });

  it('an expired session is refused and the absolute lifetime caps renewal', async () => {
    const { res } = await register();
    const token = res.json().token as string;
    const key = `session:${sha(token)}`;
    const cached = JSON.parse((await t.redis.get(key))!);
    await t.redis.set(key, await t.services.auth.sessions.seal(sha(token), { ...cached, exp: Date.now() - 1000 }), 'EX', 86_400);
    t.services.auth.sessions.forgetLocal();
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token })).statusCode).toBe(401);
    await db.adminSql`update user_sessions set expires_at = now() - interval '1 second' where token_hash = ${sha(token)}`;
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token })).statusCode).toBe(401);
  });

  it('sliding renewal writes Redis and last_activity at most once a minute', async () => {
    const { res } = await register();
    const token = res.json().token as string;
    const key = `session:${sha(token)}`;
    const w0 = JSON.parse((await t.redis.get(key))!).w;
    await t.request({ method: 'GET', url: '/api/v1/auth/me', token });
    expect(JSON.parse((await t.redis.get(key))!).w).toBe(w0);
    const [before] = await db.adminSql<{ last_activity: Date }[]>`select last_activity from user_sessions where token_hash = ${sha(token)}`;
    const cached = JSON.parse((await t.redis.get(key))!);
    await t.redis.set(key, await t.services.auth.sessions.seal(sha(token), { ...cached, w: Date.now() - 61_000 }), 'EX', 100);
    t.services.auth.sessions.forgetLocal();
    await new Promise((r) => setTimeout(r, 20));
    await t.request({ method: 'GET', url: '/api/v1/auth/me', token });
    expect(await t.redis.ttl(key)).toBeGreaterThan(86_000);
    const [after] = await db.adminSql<{ last_activity: Date }[]>`select last_activity from user_sessions where token_hash = ${sha(token)}`;
    expect(after!.last_activity.getTime()).toBeGreaterThan(before!.last_activity.getTime());
  });

  it('lists sessions, ends one, and change-password ends the others', async () => {
    const { res, body } = await register();
    const a = res.json().token as string;
    const b = (await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: body.email, password: body.password } })).json().token as string;
    const c = (await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: body.email, password: body.password } })).json().token as string;
    const list = await t.request({ method: 'GET', url: '/api/v1/auth/sessions', token: a });
    expect(list.json()).toHaveLength(3);
    expect(list.json().filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    const bId = (await db.adminSql<{ id: string }[]>`select id from user_sessions where token_hash = ${sha(b)}`)[0]!.id;
    expect((await t.request({ method: 'DELETE', url: `/api/v1/auth/sessions/${bId}`, token: a })).statusCode).toBe(204);
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token: b })).statusCode).toBe(401);
    expect((await t.request({ method: 'DELETE', url: `/api/v1/auth/sessions/${bId}`, token: a })).statusCode).toBe(404);
    const weak = await t.request({ method: 'POST', url: '/api/v1/auth/change-password', token: a, payload: { current_password: body.password, new_password: 'short' } });
    expect(weak.statusCode).toBe(422);
    expect(weak.json().error.message).toMatch(/^new_password:/);
    const wrong = await t.request({ method: 'POST', url: '/api/v1/auth/change-password', token: a, payload: { current_password: 'Wrong-Password-1', new_password: 'Another-Sturdy-Pass-7' } });
    expect(wrong.statusCode).toBe(422);
    const ok = await t.request({ method: 'POST', url: '/api/v1/auth/change-password', token: a, payload: { current_password: body.password, new_password: 'Another-Sturdy-Pass-7' } });
    expect(ok.statusCode).toBe(204);
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token: a })).statusCode).toBe(200);
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token: c })).statusCode).toBe(401);
    expect((await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: body.email, password: body.password } })).statusCode).toBe(401);
    expect((await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: body.email, password: 'Another-Sturdy-Pass-7' } })).statusCode).toBe(200);
  });

  it('a failed login says the same whether or not the account exists', async () => {
    const { body } = await register();
    const wrongPw = await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: body.email, password: 'Not-The-Password-1' } });
    const noUser = await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: 'nobody-at-all@example.com', password: 'Not-The-Password-1' } });
    expect(wrongPw.statusCode).toBe(401);
    expect(noUser.statusCode).toBe(401);
    expect(wrongPw.json()).toEqual(noUser.json());
  });

  it('audit: registration and password changes are logged without secrets', async () => {
    const { res, body } = await register();
    const id = res.json().user.id;
    const rows = await db.adminSql<{ action: string; after: unknown }[]>`select action, after from audit_logs where user_id = ${id} order by id`;
    expect(rows.map((r) => r.action)).toEqual(['register', 'login']);
    expect(JSON.stringify(rows)).not.toContain(body.password);
    expect(JSON.stringify(await db.adminSql`select * from audit_logs`)).not.toMatch(/argon2/);
  });

  it('the user cache is filled by /auth/me and dropped when the user changes', async () => {
    const { res } = await register();
    const { token, user } = res.json();
    await t.request({ method: 'GET', url: '/api/v1/auth/me', token });
    expect(await t.redis.ttl(`cache:user:${user.id}`)).toBeGreaterThan(890);
    const patched = await t.request({ method: 'PATCH', url: `/api/v1/users/${user.id}`, token, payload: { first_name: 'Changed' } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(await t.redis.exists(`cache:user:${user.id}`)).toBe(0);
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token })).json().first_name).toBe('Changed');
  });
});

describe('bad input gets a clear 4xx and changes nothing', () => {
  it.each([
    [{ email: 'x@example.com', username: 'xuser', password: 'Sturdy-Password-9', role: 'super_admin' }, 422, /role/],
    [{ email: 'x@example.com', username: 'xuser', password: 'Sturdy-Password-9', is_active: true }, 422, /is_active/],
    [{ email: 'not-an-email', username: 'xuser', password: 'Sturdy-Password-9' }, 422, /email/],
    [{ email: 'x@example.com', username: 'x', password: 'Sturdy-Password-9' }, 422, /username/],
    [{ email: 'x@example.com', username: 'xuser', password: 12345678901234 }, 422, /password/],
    [{ email: 'x@example.com', username: 'xuser' }, 422, /password/],
    [{ email: 'x@example.com', username: "x'; drop table users; --", password: 'Sturdy-Password-9' }, 422, /username/],
    [{ email: 'x@example.com', username: 'xuser', password: 'alllowercaseletters' }, 422, /^password:/],
    [{ email: 'x@example.com', username: 'xuser', password: 'Xuser-is-in-here-1' }, 422, /^password:/],
  ])('register %o → %i', async (payload, status, message) => {
    const before = await db.adminSql<{ n: number }[]>`select count(*)::int as n from users`;
    const res = await t.request({ method: 'POST', url: '/api/v1/auth/register', payload });
    expect(res.statusCode, res.body).toBe(status);
    expect(res.json().error.message).toMatch(message);
    const after = await db.adminSql<{ n: number }[]>`select count(*)::int as n from users`;
    expect(after[0]!.n).toBe(before[0]!.n);
  });

  it('registration does not tell whether an e-mail address or a username is taken', async () => {
    const { body, reg: first } = await register();
    const before = await db.adminSql<{ n: number }[]>`select count(*)::int as n from users`;
    const takenEmail = await t.request({ method: 'POST', url: '/api/v1/auth/register', payload: { ...body, email: body.email.toUpperCase(), username: 'other' + n, password: 'Other-Password-77' } });
    const takenName = await t.request({ method: 'POST', url: '/api/v1/auth/register', payload: { ...body, email: `fresh${n}-${Date.now()}@example.com`, password: 'Other-Password-77' } });
    for (const r of [takenEmail, takenName]) {
      expect(r.statusCode).toBe(first.statusCode);
      expect(r.json()).toEqual(first.json());
    }
    expect(first.json().message).toMatch(/sign in/);
    const after = await db.adminSql<{ n: number }[]>`select count(*)::int as n from users`;
    expect(after[0]!.n).toBe(before[0]!.n);
    // The account that was there keeps its password; the second registration changed nothing.
    expect((await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: body.email, password: 'Other-Password-77' } })).statusCode).toBe(401);
    expect((await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: body.email, password: body.password } })).statusCode).toBe(200);
  });

  it('an oversized body is 413; malformed JSON is 400', async () => {
    const big = await t.request({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ login: 'x'.repeat(2 * 1024 * 1024), password: 'x' }) });
    expect(big.statusCode).toBe(413);
    const bad = await t.request({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"login": ' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toBeDefined();
  });

  it('a malformed or unknown token is 401, never 500', async () => {
    for (const token of ['x', 'a'.repeat(43), "' or 1=1 --", 'é'.repeat(43)]) {
      const res = await t.request({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${token}` } });
      expect(res.statusCode, token).toBe(401);
    }
  });
});

describe('OpenAPI', () => {
  it('serves /docs and documents every API route with a response schema', async () => {
    expect((await t.request({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400);
    const spec = (await t.request({ method: 'GET', url: '/docs/json' })).json();
    const routes = t.app.printRoutes({ commonPrefix: false });
    expect(routes).toContain('auth/login');
    for (const [path, ops] of Object.entries(spec.paths as Record<string, Record<string, { responses?: Record<string, unknown> }>>)) {
      if (!path.startsWith('/api/v1')) continue;
      for (const [method, op] of Object.entries(ops)) {
        expect(Object.keys(op.responses ?? {}).some((c) => c.startsWith('2')), `${method} ${path}`).toBe(true);
      }
    }
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/api/v1/auth/login', '/api/v1/users/{id}', '/api/v1/organizations/{id}/join-token']));
  });
});
