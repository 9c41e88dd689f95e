// A statement or transaction the server answered with "your session is over" (57P01
// admin_shutdown, 57P02 crash_shutdown) committed nothing: it is run once more. postgres.js
// hands that answer to the first query of a connection the server ends while it starts up (a
// restart under load; the fault suite saw one request fail that way after the database was
// back). A connection that closes under a running query (CONNECTION_CLOSED) may have committed,
// so that error is the caller's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { databaseUnavailable, onceMoreIfServerEnded, withUserTx } from '../../src/db/tx.js';

describe('databaseUnavailable (the API answers 503, not 500)', () => {
  it('is an ended or unreachable connection, and no other database error', () => {
    const err = (code?: string) => Object.assign(new Error('x'), code === undefined ? {} : { code });
    for (const code of ['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'ECONNRESET', 'EPIPE', '57P01', '57P02', '57P03', '08006', 'ECONNREFUSED', 'ETIMEDOUT', 'CONNECT_TIMEOUT']) {
      expect(databaseUnavailable(err(code)), code).toBe(true);
    }
    for (const code of ['23505', '42P01', '57014', '0800', 'XECONNRESET', undefined]) expect(databaseUnavailable(err(code)), String(code)).toBe(false);
    expect(databaseUnavailable(null)).toBe(false);
  });
});

describe('onceMoreIfServerEnded', () => {
  const failing = (codes: string[]) => {
    let calls = 0;
    const attempt = async () => {
      const code = codes[calls++];
      if (code) throw Object.assign(new Error(`failed with ${code}`), { code });
      return calls;
    };
    return { attempt, calls: () => calls };
  };

  it('runs the attempt once more after 57P01 or 57P02, and only once', async () => {
    for (const code of ['57P01', '57P02']) {
      const f = failing([code]);
      expect(await onceMoreIfServerEnded(f.attempt)).toBe(2);
    }
    const twice = failing(['57P01', '57P01']);
    await expect(onceMoreIfServerEnded(twice.attempt)).rejects.toThrow(/57P01/);
    expect(twice.calls()).toBe(2);
  });

  it('passes every other error straight through', async () => {
    for (const code of ['CONNECTION_CLOSED', 'ECONNRESET', '23505', '57014']) {
      const f = failing([code]);
      await expect(onceMoreIfServerEnded(f.attempt)).rejects.toThrow(code);
      expect(f.calls()).toBe(1);
    }
  });
});

describe('withUserTx against the real server', () => {
  let db: TestDatabase;
  let w: World;
  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 4 });
    w = await buildWorld(db.adminSql);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('does not run again a transaction whose connection closed under it, nor one that failed', async () => {
    let attempts = 0;
    const userId = w.users.omA1.id;
    const result = withUserTx(db.appSql, userId, async (tx) => {
      attempts++;
      await tx`select pg_sleep(30), 'server-ended-probe' as tag`;
    });
    let pid: number | undefined;
    for (let i = 0; i < 200 && pid === undefined; i++) {
      const [r] = await db.adminSql<{ pid: number }[]>`
        select pid from pg_stat_activity where datname = ${db.name} and state = 'active' and query like '%server-ended-probe%' and pid <> pg_backend_pid()`;
      pid = r?.pid;
      if (pid === undefined) await new Promise((res) => setTimeout(res, 20));
    }
    expect(pid).toBeDefined();
    await db.adminSql`select pg_terminate_backend(${pid!})`;
    await expect(result).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(attempts).toBe(1);
    let failed = 0;
    await expect(withUserTx(db.appSql, userId, async (tx) => {
      failed++;
      await tx`select 1/0`;
    })).rejects.toThrow(/division by zero/);
    expect(failed).toBe(1);
    // The pool works on: the closed connection is replaced.
    expect(await withUserTx(db.appSql, userId, async (tx) => (await tx<{ n: number }[]>`select 1 as n`)[0]!.n)).toBe(1);
  });
});
