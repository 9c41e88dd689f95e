// Issue 13, item 9: row-level security that cannot be talked round. app_uid() trusts
// app.current_user_id only with the context app_set_user() leaves beside it, and a user cannot
// revive or extend its own sessions.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withUserTx } from '../../src/db/tx.js';
import type { TxSql } from '../../src/db/pool.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, type UserKey, type World } from '../helpers/fixtures.js';

let db: TestDatabase;
let w: World;

beforeAll(async () => {
  db = await createTestDatabase();
  w = await buildWorld(db.adminSql);
});
afterAll(async () => {
  await db?.drop();
});

class Rollback<T> extends Error {
  constructor(readonly value: T) {
    super('rollback');
  }
}

async function probe<T>(user: UserKey, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  try {
    await withUserTx(db.appSql, w.users[user].id, async (tx) => {
      throw new Rollback(await fn(tx));
    });
  } catch (err) {
    if (err instanceof Rollback) return err.value as T;
    throw err;
  }
  throw new Error('unreachable');
}

describe('app_uid()', () => {
  it('ignores app.current_user_id set by hand, without app_set_user()', async () => {
    const seen = await db.appSql.begin(async (tx) => {
      await tx`select set_config('app.current_user_id', ${w.users.omA1.id}, true)`;
      const [u] = await tx<{ uid: string | null }[]>`select app_uid() as uid`;
      const personal = await tx`select id from companies where id = ${w.companies.persA1}`;
      const creds = await tx`select user_id from user_credentials`;
      return { uid: u!.uid, personal: personal.length, creds: creds.length };
    });
    expect(seen).toEqual({ uid: null, personal: 0, creds: 0 });
  });

  it('ignores a hand-set id beside the context of another user', async () => {
    const seen = await probe('omB1', async (tx) => {
      await tx`select set_config('app.current_user_id', ${w.users.omA1.id}, true)`;
      const [u] = await tx<{ uid: string | null }[]>`select app_uid() as uid`;
      return { uid: u!.uid, personal: (await tx`select id from companies where id = ${w.companies.persA1}`).length };
    });
    expect(seen).toEqual({ uid: null, personal: 0 });
  });

  it('is the caller after app_set_user(), and the new id while registering', async () => {
    expect(await probe('omA1', async (tx) => (await tx<{ uid: string }[]>`select app_uid() as uid`)[0]!.uid)).toBe(w.users.omA1.id);
    const newId = '00000000-0000-4000-8000-0000000000aa';
    const uid = await db.appSql.begin(async (tx) => {
      await tx`select app_set_user(${newId})`;
      const [u] = await tx<{ uid: string; role: string | null; levels: string[] }[]>`select app_uid() as uid, app_role() as role, app_open_levels() as levels`;
      throw new Rollback(u);
    }).catch((e: unknown) => (e as Rollback<{ uid: string; role: string | null; levels: string[] }>).value);
    expect(uid.uid).toBe(newId);
    expect(uid.role ?? '').toBe('');
    expect(uid.levels).toEqual([]);
  });
});

describe('user_sessions', () => {
  const hash = (s: string) => createHash('sha256').update(s).digest('hex');

  it('a revoked session stays revoked and no session is extended, by its owner or its managers', async () => {
    const [s] = await db.adminSql<{ id: string }[]>`
      insert into user_sessions (user_id, token_hash, expires_at, revoked_at)
      values (${w.users.omA1.id}, ${hash('revoked-' + Date.now())}, now() + interval '1 day', now()) returning id`;
    const [live] = await db.adminSql<{ id: string }[]>`
      insert into user_sessions (user_id, token_hash, expires_at)
      values (${w.users.omA1.id}, ${hash('live-' + Date.now())}, now() + interval '1 day') returning id`;
    for (const who of ['omA1', 'oaA1', 'taA', 'super'] as UserKey[]) {
      expect((await probe(who, (tx) => tx`update user_sessions set revoked_at = null where id = ${s!.id} returning id`)).length, who).toBe(0);
      await expect(probe(who, (tx) => tx`update user_sessions set expires_at = expires_at + interval '1 year' where id = ${live!.id}`), who).rejects.toThrow(/permission denied/);
      // last_activity is what the idle timeout reads: not into the future.
      await expect(probe(who, (tx) => tx`update user_sessions set last_activity = now() + interval '10 days' where id = ${live!.id}`), who).rejects.toThrow(/row-level security/);
    }
    const [after] = await db.adminSql<{ revoked_at: Date | null }[]>`select revoked_at from user_sessions where id = ${s!.id}`;
    expect(after!.revoked_at).not.toBeNull();
    // What the application does still works: touch and revoke.
    expect((await probe('omA1', (tx) => tx`update user_sessions set last_activity = CURRENT_TIMESTAMP where id = ${live!.id} returning id`)).length).toBe(1);
    expect((await probe('oaA1', (tx) => tx`update user_sessions set revoked_at = CURRENT_TIMESTAMP where id = ${live!.id} returning id`)).length).toBe(1);
  });

  it('a user cannot mint itself a session past the longest absolute lifetime, or one already revoked', async () => {
    await expect(probe('omA1', (tx) => tx`
      insert into user_sessions (user_id, token_hash, expires_at) values (${w.users.omA1.id}, ${hash('forever')}, now() + interval '20 years')`)).rejects.toThrow(/row-level security/);
    await expect(probe('omA1', (tx) => tx`
      insert into user_sessions (user_id, token_hash, expires_at, last_activity) values (${w.users.omA1.id}, ${hash('ahead')}, now() + interval '1 day', now() + interval '5 days')`)).rejects.toThrow(/row-level security/);
    expect((await probe('omA1', (tx) => tx`
      insert into user_sessions (user_id, token_hash, expires_at) values (${w.users.omA1.id}, ${hash('fine')}, now() + interval '30 days') returning id`)).length).toBe(1);
  });
});
