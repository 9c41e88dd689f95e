import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../helpers/db.js';
import { ALL_USERS, createWorldApp, type TestApp, type WorldApp } from '../helpers/app.js';
import type { UserKey, World } from '../helpers/fixtures.js';

let world: WorldApp;
let db: TestDatabase;
let t: TestApp;
let w: World;
let tok: Record<UserKey, string>;
const ALL = ALL_USERS;

beforeAll(async () => {
  world = await createWorldApp(ALL);
  ({ db, t, w, tok } = world);
});
afterAll(async () => {
  await world.close();
});

const api = (method: string, url: string, who: UserKey, payload?: unknown) => world.api(method, url, who, payload);

async function auditCount(): Promise<number> {
  const [r] = await db.adminSql<{ n: number }[]>`select count(*)::int as n from audit_logs`;
  return r!.n;
}

describe('tenants', () => {
  it('only super admins create and change tenants', async () => {
    for (const u of ALL.filter((x) => x !== 'super')) {
      expect((await api('POST', '/tenants', u, { name: 'Evil' })).statusCode, u).toBe(403);
    }
    for (const u of ['taA', 'oaA1', 'omA1'] as UserKey[]) {
      expect((await api('PATCH', `/tenants/${w.tenants.A}`, u, { name: 'Mine' })).statusCode, u).toBe(403);
    }
    // Another tenant's id is simply not there.
    expect((await api('PATCH', `/tenants/${w.tenants.B}`, 'taA', { name: 'Mine' })).statusCode).toBe(404);
    expect((await api('GET', `/tenants/${w.tenants.B}`, 'taA')).statusCode).toBe(404);
    const created = await api('POST', '/tenants', 'super', { name: 'Tenant C', domain: 'c.example.com' });
    expect(created.statusCode).toBe(201);
    expect((await api('GET', '/tenants', 'taA')).json().items.map((x: { id: string }) => x.id)).toEqual([w.tenants.A]);
  });
});

describe('organizations', () => {
  it('tenant admins create in their tenant only; others cannot', async () => {
    expect((await api('POST', '/organizations', 'taA', { name: 'New A' })).statusCode).toBe(201);
    expect((await api('POST', '/organizations', 'taA', { name: 'Into B', tenant_id: w.tenants.B })).statusCode).toBe(403);
    for (const u of ['oaA1', 'omA1', 'uA'] as UserKey[]) expect((await api('POST', '/organizations', u, { name: 'x' })).statusCode, u).toBe(403);
    expect((await api('POST', '/organizations', 'super', { name: 'Into B', tenant_id: w.tenants.B })).statusCode).toBe(201);
  });

  it('org admins rename their own organization but not its seats or status; cross-tenant ids are 404', async () => {
    expect((await api('PATCH', `/organizations/${w.orgs.A1}`, 'oaA1', { description: 'ours' })).statusCode).toBe(200);
    expect((await api('PATCH', `/organizations/${w.orgs.A1}`, 'oaA1', { max_members: 5000 })).statusCode).toBe(403);
    expect((await api('PATCH', `/organizations/${w.orgs.A1}`, 'oaA1', { is_active: false })).statusCode).toBe(403);
    expect((await api('PATCH', `/organizations/${w.orgs.A1}`, 'omA1', { description: 'x' })).statusCode).toBe(403);
    expect((await api('PATCH', `/organizations/${w.orgs.A2}`, 'oaA1', { description: 'x' })).statusCode).toBe(404);
    expect((await api('PATCH', `/organizations/${w.orgs.B1}`, 'taA', { description: 'x' })).statusCode).toBe(404);
    expect((await api('GET', `/organizations/${w.orgs.B1}`, 'omA1')).statusCode).toBe(404);
    expect((await api('DELETE', `/organizations/${w.orgs.B1}`, 'taA')).statusCode).toBe(404);
    for (const u of ['oaA1', 'omA1'] as UserKey[]) {
      expect((await api('POST', `/organizations/${w.orgs.A1}/join-token`, u === 'oaA1' ? 'omA1' : 'uA', {})).statusCode).toBeGreaterThanOrEqual(403);
    }
    expect((await api('POST', `/organizations/${w.orgs.B1}/join-token`, 'oaA1', {})).statusCode).toBe(404);
    expect((await api('GET', `/organizations/${w.orgs.A1}/whitelist`, 'omA1')).statusCode).toBe(403);
    expect((await api('POST', `/organizations/${w.orgs.B1}/whitelist`, 'taA', { emails: ['x@y.com'] })).statusCode).toBe(404);
  });
});

describe('users and roles', () => {
  it('nobody grants a role above what they manage, on create or update', async () => {
    const mk = (role: string, extra: Record<string, unknown> = {}) => ({ email: `${role}-${Math.random()}@x.com`.replace(/0\./, ''), username: `u_${Math.random().toString(36).slice(2, 10)}`, password: 'Sturdy-Password-9', role, ...extra });
    const denied: Array<[UserKey, string, Record<string, unknown>]> = [
      ['taA', 'tenant_admin', {}],
      ['taA', 'super_admin', {}],
      ['oaA1', 'org_admin', { organization_id: w.orgs.A1 }],
      ['oaA1', 'tenant_admin', {}],
      ['omA1', 'org_member', { organization_id: w.orgs.A1 }],
      ['uA', 'user', {}],
    ];
    for (const [u, role, extra] of denied) {
      const res = await api('POST', '/users', u, mk(role, extra));
      expect(res.statusCode, `${u} creating ${role}`).toBe(403);
    }
    // ...nor into another scope.
    expect((await api('POST', '/users', 'taA', mk('org_member', { organization_id: w.orgs.B1 }))).statusCode).toBe(404);
    expect((await api('POST', '/users', 'oaA1', mk('org_member', { organization_id: w.orgs.A2 }))).statusCode).toBe(404);
    // Allowed.
    expect((await api('POST', '/users', 'taA', mk('org_admin', { organization_id: w.orgs.A2 }))).statusCode).toBe(201);
    expect((await api('POST', '/users', 'oaA1', mk('org_member'))).statusCode).toBe(201);
    expect((await api('POST', '/users', 'super', mk('tenant_admin', { tenant_id: w.tenants.B }))).statusCode).toBe(201);

    const escalations: Array<[UserKey, UserKey, Record<string, unknown>]> = [
      ['omA1', 'omA1', { role: 'org_admin' }],
      ['oaA1', 'oaA1', { role: 'tenant_admin' }],
      ['taA', 'taA', { role: 'super_admin' }],
      ['oaA1', 'omA1', { role: 'org_admin' }],
      ['taA', 'omA1', { role: 'tenant_admin' }],
      ['taA', 'oaA1', { role: 'super_admin' }],
      ['omA1', 'omA1b', { first_name: 'x' }],
      ['uA', 'uA', { organization_id: w.orgs.A1 }],
    ];
    for (const [actor, target, patch] of escalations) {
      const res = await api('PATCH', `/users/${w.users[target].id}`, actor, patch);
      expect(res.statusCode, `${actor} → ${target} ${JSON.stringify(patch)}`).toBe(403);
    }
    const [r] = await db.adminSql<{ role: string }[]>`select role from users where id = ${w.users.omA1.id}`;
    expect(r!.role).toBe('org_member');
    // Out of scope: 404, not 403 (existence is not revealed).
    for (const [actor, target] of [['taA', 'omB1'], ['oaA1', 'omA2'], ['oaA1', 'taA'], ['omA1', 'omB1'], ['uA', 'omA1']] as Array<[UserKey, UserKey]>) {
      expect((await api('PATCH', `/users/${w.users[target].id}`, actor, { first_name: 'x' })).statusCode, `${actor} → ${target}`).toBe(404);
      expect((await api('GET', `/users/${w.users[target].id}`, actor)).statusCode, `${actor} reads ${target}`).toBe(404);
      expect((await api('DELETE', `/users/${w.users[target].id}`, actor)).statusCode, `${actor} deletes ${target}`).toBe(404);
    }
  });

  it('the user cache never widens who can read a profile', async () => {
    // omB1's profile is cached by omB1 reading itself...
    expect((await api('GET', `/users/${w.users.omB1.id}`, 'omB1')).statusCode).toBe(200);
    expect(await t.redis.exists(`cache:user:${w.users.omB1.id}`)).toBe(1);
    // ...and still invisible to tenant A.
    expect((await api('GET', `/users/${w.users.omB1.id}`, 'taA')).statusCode).toBe(404);
    expect((await api('GET', `/users/${w.users.omB1.id}`, 'taB')).statusCode).toBe(200);
  });

  it('lists only the users in scope', async () => {
    const ids = (await api('GET', '/users?limit=100', 'oaA1')).json().items.map((u: { organization_id: string }) => u.organization_id);
    expect(new Set(ids)).toEqual(new Set([w.orgs.A1]));
    const tenants = (await api('GET', '/users?limit=100', 'taB')).json().items.map((u: { tenant_id: string }) => u.tenant_id);
    expect(new Set(tenants)).toEqual(new Set([w.tenants.B]));
    // Paged by cursor: two at a time, every user once, in order.
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: Array<{ id: string }>; next_cursor: string | null; total: number; total_relation: string } =
        (await api('GET', `/users?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, 'taB')).json();
      expect(page.total_relation).toBe('eq');
      all.push(...page.items.map((u) => u.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(all).toEqual((await api('GET', '/users?limit=100', 'taB')).json().items.map((u: { id: string }) => u.id));
    expect(new Set(all).size).toBe(all.length);
  });

  it('deactivating a user ends all their sessions at once, and it is audited', async () => {
    const second = await t.login('omA1b');
    const before = await auditCount();
    const res = await api('DELETE', `/users/${w.users.omA1b.id}`, 'oaA1');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().is_active).toBe(false);
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token: tok.omA1b })).statusCode).toBe(401);
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token: second })).statusCode).toBe(401);
    const [open] = await db.adminSql<{ n: number }[]>`select count(*)::int as n from user_sessions where user_id = ${w.users.omA1b.id} and revoked_at is null`;
    expect(open!.n).toBe(0);
    expect(await auditCount()).toBe(before + 1);
    const [a] = await db.adminSql<{ action: string; before: { is_active: boolean }; after: { is_active: boolean } }[]>`
      select action, before, after from audit_logs where row_id = ${w.users.omA1b.id} order by id desc limit 1`;
    expect(a).toMatchObject({ action: 'deactivate', before: { is_active: true }, after: { is_active: false } });
    expect((await t.request({ method: 'POST', url: '/api/v1/auth/login', payload: { login: 'omA1b', password: 'Correct-Horse-42!' } })).statusCode).toBe(401);
  });

  it('a role change takes effect on the next request (cached session principal dropped)', async () => {
    expect((await api('POST', '/organizations', 'oaB1', { name: 'x' })).statusCode).toBe(403);
    expect((await api('PATCH', `/users/${w.users.omB1.id}`, 'taB', { role: 'org_admin' })).statusCode).toBe(200);
    const res = await api('GET', `/organizations/${w.orgs.B1}/whitelist`, 'omB1');
    expect(res.statusCode).toBe(200);
  });
});

describe('joining an organization', () => {
  it('needs a valid, unexpired token, a whitelisted email, an active organization with a free seat', async () => {
    const reg = async (email: string) => {
      const r = await t.request({ method: 'POST', url: '/api/v1/auth/register', payload: { email, username: email.split('@')[0]!.replace(/[^a-z0-9]/g, '_'), password: 'Sturdy-Password-9' } });
      expect(r.statusCode, r.body).toBe(202);
      // Joining needs a verified address (issue 13): the mailed link is followed as its owner would.
      await t.verifyEmail(email);
      return t.login(email, 'Sturdy-Password-9');
    };
    const alice = await reg('alice.joiner@example.com');
    const bob = await reg('bob.joiner@example.com');
    const carol = await reg('carol.joiner@example.com');
    const tokenRes = await api('POST', `/organizations/${w.orgs.A2}/join-token`, 'taA', { expires_in_hours: 24 });
    expect(tokenRes.statusCode).toBe(201);
    const joinToken = tokenRes.json().token as string;
    const [stored] = await db.adminSql<{ h: string }[]>`select join_token_hash as h from organizations where id = ${w.orgs.A2}`;
    expect(stored!.h).toBe(createHash('sha256').update(joinToken).digest('hex'));
    const join = (token: string, jt = joinToken) => t.request({ method: 'POST', url: '/api/v1/auth/join', token, payload: { token: jt } });

    expect((await join(alice)).statusCode).toBe(403); // not whitelisted
    expect((await api('POST', `/organizations/${w.orgs.A2}/whitelist`, 'taA', { emails: ['Alice.Joiner@example.com', 'bob.joiner@example.com', 'carol.joiner@example.com'] })).json()).toEqual({ added: 3 });
    expect((await join(alice, 'wrong-token-value')).statusCode).toBe(404);
    const ok = await join(alice);
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ role: 'org_member', organization_id: w.orgs.A2, tenant_id: w.tenants.A });
    expect((await join(alice)).statusCode).toBe(409); // already a member
    // The joined user now sees the organization's rows.
    expect((await t.request({ method: 'GET', url: `/api/v1/organizations/${w.orgs.A2}`, token: alice })).statusCode).toBe(200);

    // Member limit: A2 has omA2 + alice (+ maybe one created above) — cap it at the current count.
    const [{ n } = { n: 0 }] = await db.adminSql<{ n: number }[]>`select count(*)::int as n from users where organization_id = ${w.orgs.A2} and is_active`;
    await db.adminSql`update organizations set max_members = ${n} where id = ${w.orgs.A2}`;
    expect((await join(bob)).statusCode).toBe(409);
    await db.adminSql`update organizations set max_members = 100 where id = ${w.orgs.A2}`;

    // Rotation invalidates the old token; expiry and deactivation refuse.
    const rotated = (await api('POST', `/organizations/${w.orgs.A2}/join-token`, 'taA', {})).json().token as string;
    expect((await join(bob)).statusCode).toBe(404);
    await db.adminSql`update organizations set join_token_expires_at = now() - interval '1 minute' where id = ${w.orgs.A2}`;
    expect((await join(bob, rotated)).statusCode).toBe(404);
    await db.adminSql`update organizations set join_token_expires_at = now() + interval '1 hour', is_active = false where id = ${w.orgs.A2}`;
    expect((await join(bob, rotated)).statusCode).toBe(403);
    await db.adminSql`update organizations set is_active = true where id = ${w.orgs.A2}`;
    expect((await join(bob, rotated)).statusCode).toBe(200);
    // Two racing for one last seat: exactly one wins.
    const [{ n: m } = { n: 0 }] = await db.adminSql<{ n: number }[]>`select count(*)::int as n from users where organization_id = ${w.orgs.A2} and is_active`;
    await db.adminSql`update organizations set max_members = ${m + 1} where id = ${w.orgs.A2}`;
    const dave = await reg('dave.joiner@example.com');
    await api('POST', `/organizations/${w.orgs.A2}/whitelist`, 'taA', { emails: ['dave.joiner@example.com'] });
    const results = await Promise.all([join(carol, rotated), join(dave, rotated)]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409]);
  });
});
