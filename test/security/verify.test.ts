// Issue 13, item 3: e-mail verification, against the real PostgreSQL and Redis, e-mails through
// the outbox mailer (the development delivery path).
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorldApp, type WorldApp } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';
import { withUserTx } from '../../src/db/tx.js';
import { seedDemo } from '../../src/services/seed.js';

let wa: WorldApp;
beforeAll(async () => {
  wa = await createWorldApp(['super', 'taA']);
});
afterAll(async () => {
  await wa.close();
});

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
let n = 0;
async function register(): Promise<{ email: string; token: string; id: string }> {
  n++;
  const email = `newhire${n}.${Date.now()}@corp.example`;
  const res = await wa.t.request({ method: 'POST', url: '/api/v1/auth/register', payload: { email, username: `newhire${n}_${Date.now() % 100000}`, password: 'Sturdy-Password-9' } });
  // Registration answers 202 whether or not the address is taken; the account then signs in.
  expect(res.statusCode, res.body).toBe(202);
  const token = await wa.t.login(email, 'Sturdy-Password-9');
  const who = await wa.t.request({ method: 'GET', url: '/api/v1/auth/me', token });
  return { email, token, id: who.json().id as string };
}
const me = async (token: string) => (await wa.t.request({ method: 'GET', url: '/api/v1/auth/me', token })).json();
const verify = (token: string) => wa.t.request({ method: 'POST', url: '/api/v1/auth/verify', payload: { token } });
const resend = (token: string) => wa.t.request({ method: 'POST', url: '/api/v1/auth/verify/resend', token });

describe('e-mail verification', () => {
  it('an unverified account cannot join via the whitelist; following the mailed link (once) lets it', async () => {
    const u = await register();
    expect((await me(u.token)).is_verified).toBe(false);
    const mail = wa.t.lastMail(u.email);
    expect(mail?.text).toMatch(/https:\/\/accunode\.test\/verify-email\?token=/);

    // The recipe: an impostor registers the new hire's address before the real person.
    const jt = (await wa.api('POST', `/organizations/${wa.w.orgs.A2}/join-token`, 'taA', { expires_in_hours: 1 })).json().token as string;
    await wa.api('POST', `/organizations/${wa.w.orgs.A2}/whitelist`, 'taA', { emails: [u.email] });
    const refused = await wa.t.request({ method: 'POST', url: '/api/v1/auth/join', token: u.token, payload: { token: jt } });
    expect(refused.statusCode, refused.body).toBe(403);
    expect(refused.json().error.message).toMatch(/verify your e-mail address/);
    const [still] = await wa.db.adminSql<{ role: string; organization_id: string | null }[]>`select role, organization_id from users where id = ${u.id}`;
    expect(still).toEqual({ role: 'user', organization_id: null });

    const link = wa.t.verificationToken(u.email);
    expect((await verify(link)).statusCode).toBe(200);
    expect((await me(u.token)).is_verified).toBe(true);
    const again = await verify(link);
    expect(again.statusCode).toBe(409);
    expect(again.json().error.message).toMatch(/already been used/);

    const joined = await wa.t.request({ method: 'POST', url: '/api/v1/auth/join', token: u.token, payload: { token: jt } });
    expect(joined.statusCode, joined.body).toBe(200);
    expect(joined.json()).toMatchObject({ role: 'org_member', organization_id: wa.w.orgs.A2 });
  });

  it('stores only the hash; forged, re-dated, superseded and expired links are refused in plain words', async () => {
    const u = await register();
    const first = wa.t.verificationToken(u.email);
    const rows = await wa.db.adminSql<{ token_hash: string }[]>`select token_hash from email_verifications where user_id = ${u.id}`;
    expect(rows).toEqual([{ token_hash: sha(first) }]);

    // One flipped bit anywhere (the user id, the expiry...) breaks the signature.
    const raw = Buffer.from(first, 'base64url');
    for (const at of [3, 18, 30]) {
      const bad = Buffer.from(raw);
      bad[at] = bad[at]! ^ 1;
      const res = await verify(bad.toString('base64url'));
      expect(res.statusCode).toBe(422);
      expect(res.json().error.message).toMatch(/^token: this verification link is not valid/);
    }
    for (const junk of ['x', 'a'.repeat(71), first.slice(0, 70)]) expect((await verify(junk)).statusCode).toBe(422);
    expect((await wa.t.request({ method: 'POST', url: '/api/v1/auth/verify', payload: {} })).statusCode).toBe(422);

    // A resend retires the earlier link.
    const r = await resend(u.token);
    expect(r.statusCode, r.body).toBe(202);
    const second = wa.t.verificationToken(u.email);
    expect(second).not.toBe(first);
    expect((await verify(first)).json().error.message).toMatch(/not valid/);

    // Properly signed but past its expiry: refused before the database is asked.
    const stale = await wa.t.services.verification.makeToken(u.id, new Date(Date.now() - 1000));
    const exp = await verify(stale);
    expect(exp.statusCode).toBe(422);
    expect(exp.json().error.message).toMatch(/expired/);
    // Expired in the database (the row's expiry passed) says the same.
    await wa.db.adminSql`update email_verifications set expires_at = now() - interval '1 second' where token_hash = ${sha(second)}`;
    expect((await verify(second)).json().error.message).toMatch(/expired/);
    expect((await me(u.token)).is_verified).toBe(false);
  });

  it('resend is rate limited per account and refused once verified', async () => {
    const { createTestApp } = await import('../helpers/app.js');
    const limited = await createTestApp(wa.db, { verifyResendLimit: 2 });
    try {
      const email = `limit.${Date.now()}@corp.example`;
      const reg = await limited.request({ method: 'POST', url: '/api/v1/auth/register', payload: { email, username: `limit_${Date.now() % 100000}`, password: 'Sturdy-Password-9' } });
      expect(reg.statusCode, reg.body).toBe(202);
      const token = await limited.login(email, 'Sturdy-Password-9');
      const again = () => limited.request({ method: 'POST', url: '/api/v1/auth/verify/resend', token });
      expect((await again()).statusCode).toBe(202);
      expect((await again()).statusCode).toBe(202);
      const third = await again();
      expect(third.statusCode).toBe(429);
      expect(third.json().error.message).toMatch(/at most 2 verification e-mails per hour/);
      expect(Number(third.headers['retry-after'])).toBeGreaterThan(0);
      await limited.verifyEmail(email);
      const u = await register();
      await wa.t.verifyEmail(u.email);
      const done = await resend(u.token);
      expect(done.statusCode).toBe(409);
      expect(done.json().error.message).toMatch(/already verified/);
      expect((await wa.t.request({ method: 'POST', url: '/api/v1/auth/verify/resend' })).statusCode).toBe(401);
    } finally {
      await limited.close();
    }
  });

  it('an unverified account cannot be given an organization role, by an admin or by the owner', async () => {
    const u = await register();
    const promote = await wa.api('PATCH', `/users/${u.id}`, 'super', { organization_id: wa.w.orgs.A1, role: 'org_member' });
    expect(promote.statusCode, promote.body).toBe(409);
    expect(promote.json().error.message).toMatch(/not verified the e-mail address .* cannot hold the role org_member/);
    await expect(wa.db.adminSql`update users set role = 'org_admin', tenant_id = ${wa.w.tenants.A}, organization_id = ${wa.w.orgs.A1} where id = ${u.id}`).rejects.toThrow(/not verified/);
    await expect(wa.db.adminSql`insert into users (email, username, role) values ('ghost@corp.example', 'ghost', 'super_admin')`).rejects.toThrow(/not verified/);
    await wa.t.verifyEmail(u.email);
    expect((await wa.api('PATCH', `/users/${u.id}`, 'super', { organization_id: wa.w.orgs.A1, role: 'org_member' })).statusCode).toBe(200);
  });

  it('through app_user nobody verifies itself: not by UPDATE, not at registration, not by reading the tokens', async () => {
    const u = await register();
    await expect(withUserTx(wa.db.appSql, u.id, (tx) => tx`update users set is_verified = true where id = ${u.id}`)).rejects.toThrow(/only by following the e-mail verification link/);
    const id = '00000000-0000-4000-8000-00000000abcd';
    await expect(withUserTx(wa.db.appSql, id, (tx) => tx`insert into users (id, email, username, role, is_verified) values (${id}, 'self@corp.example', 'selfie', 'user', true)`)).rejects.toThrow(/starts unverified/);
    await expect(withUserTx(wa.db.appSql, u.id, (tx) => tx`select token_hash from email_verifications`)).rejects.toThrow(/permission denied/);
    // Editing one's own name still works (the guard is about verification only).
    expect((await wa.t.request({ method: 'PATCH', url: `/api/v1/users/${u.id}`, token: u.token, payload: { first_name: 'Nina' } })).statusCode).toBe(200);
  });

  it('the demo seed makes a verified super admin', async () => {
    const fresh = await createTestDatabase();
    try {
      const seeded = await seedDemo(fresh.adminSql, mkdtempSync(path.join(tmpdir(), 'accunode-seed-')));
      expect(seeded.seeded).toBe(true);
      expect(await fresh.adminSql`select role, is_verified from users`).toEqual([{ role: 'super_admin', is_verified: true }]);
    } finally {
      await fresh.drop();
    }
  });
});
