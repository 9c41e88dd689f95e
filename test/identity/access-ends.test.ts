// Issue 13, items 1 and 2: access that ends when it should. Deactivating an organization or a
// tenant ends its members' sessions in every api process at once and keeps them out (login,
// session look-up on both paths, row-level security, join) until it is reactivated; a session
// idle for longer than SESSION_TTL_SECONDS is over even when Redis no longer holds it.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withUserTx } from '../../src/db/tx.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { createTestApp, setWorldPasswords, TEST_PASSWORD, type TestApp } from '../helpers/app.js';
import { buildWorld, type UserKey, type World } from '../helpers/fixtures.js';

let db: TestDatabase;
let w: World;
// Two api processes on one database and one Redis: what one deactivates, the other must learn.
let a: TestApp;
let b: TestApp;
const unlisten: Array<() => Promise<void>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  w = await buildWorld(db.adminSql);
  await setWorldPasswords(db, w);
  a = await createTestApp(db);
  b = await createTestApp(db);
  for (const t of [a, b]) unlisten.push((await t.services.auth.listenForRevocations(db.appSql)).unlisten);
});
afterAll(async () => {
  for (const u of unlisten) await u();
  await a?.close();
  await b?.close();
  await db?.drop();
});

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

async function until(fn: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

const me = (t: TestApp, token: string) => t.request({ method: 'GET', url: '/api/v1/auth/me', token });
const loginStatus = async (t: TestApp, login: UserKey | string) =>
  (await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login, password: TEST_PASSWORD } })).statusCode;

/** A session row written straight into the database, as a login racing the deactivation would leave. */
async function rawSession(user: UserKey): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  await db.adminSql`insert into user_sessions (user_id, token_hash, expires_at) values (${w.users[user].id}, ${sha(token)}, now() + interval '1 day')`;
  return token;
}

/** What the user's row-level security context lets it read and write, without the API. */
async function reach(user: UserKey) {
  return withUserTx(db.appSql, w.users[user].id, async (tx) => {
    const [ctx] = await tx<{ uid: string | null; orgs: string[] }[]>`select app_uid() as uid, app_readable_orgs() as orgs`;
    const companies = await tx<{ id: string }[]>`select id from companies`;
    return { uid: ctx!.uid, orgs: ctx!.orgs, companies: companies.length };
  });
}

describe('deactivating an organization', () => {
  it('ends its members\' sessions in every api process, keeps them out, and reactivation lets them sign in again', async () => {
    const taA = await a.login('taA');
    const omA1 = await a.login('omA1');
    const oaA1 = await a.login('oaA1');
    const omA2 = await a.login('omA2');
    // Process b has served the member recently: its session sits in b's memory and in Redis.
    expect((await me(b, omA1)).statusCode).toBe(200);
    expect((await me(b, oaA1)).statusCode).toBe(200);
    const racing = await rawSession('omA1b');

    const del = await a.request({ method: 'DELETE', url: `/api/v1/organizations/${w.orgs.A1}`, token: taA });
    expect(del.statusCode, del.body).toBe(200);
    expect(del.json().is_active).toBe(false);

    // Revoked in the database, in the same statement as the deactivation.
    const live = await db.adminSql<{ n: number }[]>`
      select count(*)::int as n from user_sessions s join users u on u.id = s.user_id
      where u.organization_id = ${w.orgs.A1} and s.revoked_at is null`;
    expect(live[0]!.n).toBe(0);
    // Both processes refuse the members' tokens (b hears the NOTIFY and drops its own copy).
    expect(await until(async () => (await me(b, omA1)).statusCode === 401 && (await me(b, oaA1)).statusCode === 401)).toBe(true);
    expect((await me(a, omA1)).statusCode).toBe(401);
    expect(await a.redis.exists(`session:${sha(omA1)}`)).toBe(0);
    // A session row the trigger did not revoke is refused by the database look-up itself.
    await db.adminSql`update user_sessions set revoked_at = null where token_hash = ${sha(racing)}`;
    expect((await me(b, racing)).statusCode).toBe(401);
    // Nobody of the organization signs in; the same answer as a wrong password.
    expect(await loginStatus(a, 'omA1')).toBe(401);
    expect(await loginStatus(a, 'oaA1@example.com')).toBe(401);
    // Row-level security gives them nothing, not even their own rows, and the tenant admin no
    // longer reaches the organization's rows.
    expect(await reach('omA1')).toEqual({ uid: null, orgs: [], companies: 0 });
    expect((await reach('taA')).orgs).toEqual([w.orgs.A2]);
    // Other organizations and the tenant admin carry on.
    expect((await me(b, omA2)).statusCode).toBe(200);
    expect((await me(b, taA)).statusCode).toBe(200);

    // Reactivation: the same users sign in again; the revoked sessions stay revoked.
    const back = await a.request({ method: 'PATCH', url: `/api/v1/organizations/${w.orgs.A1}`, token: taA, payload: { is_active: true } });
    expect(back.statusCode, back.body).toBe(200);
    expect((await me(b, omA1)).statusCode).toBe(401);
    const again = await b.login('omA1');
    expect((await me(a, again)).statusCode).toBe(200);
    expect((await reach('omA1')).uid).toBe(w.users.omA1.id);
    expect((await reach('taA')).orgs.sort()).toEqual([w.orgs.A1, w.orgs.A2].sort());
  });

  it('no one joins an organization of an inactive tenant', async () => {
    const token = randomBytes(24).toString('base64url');
    await db.adminSql`update organizations set join_token_hash = ${sha(token)}, join_token_expires_at = now() + interval '1 hour' where id = ${w.orgs.B2}`;
    await db.adminSql`insert into organization_whitelist (organization_id, email) values (${w.orgs.B2}, 'ua@example.com') on conflict do nothing`;
    const uA = await a.login('uA');
    await db.adminSql`update tenants set is_active = false where id = ${w.tenants.B}`;
    try {
      const res = await a.request({ method: 'POST', url: '/api/v1/auth/join', token: uA, payload: { token } });
      expect(res.statusCode, res.body).toBe(403);
      expect(res.json().error.message).toMatch(/not active/);
    } finally {
      await db.adminSql`update tenants set is_active = true where id = ${w.tenants.B}`;
    }
    const [u] = await db.adminSql<{ organization_id: string | null }[]>`select organization_id from users where id = ${w.users.uA.id}`;
    expect(u!.organization_id).toBeNull();
  });
});

describe('deactivating a tenant', () => {
  it('ends every session of the tenant, super admins excepted, until it is reactivated', async () => {
    const sup = await a.login('super');
    const taB = await a.login('taB');
    const omB1 = await a.login('omB1');
    expect((await me(b, omB1)).statusCode).toBe(200);
    const res = await a.request({ method: 'PATCH', url: `/api/v1/tenants/${w.tenants.B}`, token: sup, payload: { is_active: false } });
    expect(res.statusCode, res.body).toBe(200);
    expect(await until(async () => (await me(b, omB1)).statusCode === 401 && (await me(b, taB)).statusCode === 401)).toBe(true);
    expect(await loginStatus(b, 'taB')).toBe(401);
    expect(await loginStatus(b, 'oaB1')).toBe(401);
    expect((await reach('taB')).uid).toBeNull();
    // The organization itself is still marked active: the tenant alone decides.
    expect((await reach('omB1')).companies).toBe(0);
    // A super admin is platform-wide: the fixture's belongs to tenant A, and deactivating that
    // tenant must not lock the platform out.
    await db.adminSql`update tenants set is_active = false where id = ${w.tenants.A}`;
    try {
      expect((await me(b, sup)).statusCode).toBe(200);
      expect((await reach('super')).uid).toBe(w.users.super.id);
    } finally {
      await db.adminSql`update tenants set is_active = true where id = ${w.tenants.A}`;
    }

    expect((await a.request({ method: 'PATCH', url: `/api/v1/tenants/${w.tenants.B}`, token: sup, payload: { is_active: true } })).statusCode).toBe(200);
    expect((await me(b, omB1)).statusCode).toBe(401);
    expect(await loginStatus(b, 'omB1')).toBe(200);
    expect((await reach('omB1')).companies).toBeGreaterThan(0);
  });
});

describe('the idle timeout', () => {
  it('a session unused for longer than SESSION_TTL_SECONDS is refused once Redis has let it go', async () => {
    const token = await a.login('omA2');
    await db.adminSql`update user_sessions set last_activity = now() - interval '2 days' where token_hash = ${sha(token)}`;
    // The Redis key's TTL lapsed (24 h), as it would have after two idle days.
    await a.redis.del(`session:${sha(token)}`);
    a.services.auth.sessions.forgetLocal();
    expect((await me(a, token)).statusCode).toBe(401);
    expect(await a.redis.exists(`session:${sha(token)}`)).toBe(0);
  });

  it('a Redis entry outliving an idle row does not revive it at its next database check', async () => {
    const token = await a.login('omA2');
    const key = `session:${sha(token)}`;
    const cached = JSON.parse((await a.redis.get(key))!);
    await a.redis.set(key, await a.services.auth.sessions.seal(sha(token), { ...cached, w: Date.now() - 120_000 }), 'EX', 86_400);
    await db.adminSql`update user_sessions set last_activity = now() - interval '2 days' where token_hash = ${sha(token)}`;
    a.services.auth.sessions.forgetLocal();
    expect((await me(a, token)).statusCode).toBe(401);
    expect(await a.redis.exists(key)).toBe(0);
  });

  it('a session used within the idle window is rebuilt from the database and slides on', async () => {
    const token = await a.login('omA2');
    await db.adminSql`update user_sessions set last_activity = now() - interval '23 hours' where token_hash = ${sha(token)}`;
    await a.redis.del(`session:${sha(token)}`);
    a.services.auth.sessions.forgetLocal();
    expect((await me(a, token)).statusCode).toBe(200);
    const [row] = await db.adminSql<{ idle: number }[]>`
      select extract(epoch from now() - last_activity)::int as idle from user_sessions where token_hash = ${sha(token)}`;
    expect(row!.idle).toBeLessThan(3600);
  });
});
