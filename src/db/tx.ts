import type { Sql, TxSql } from './pool.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Runs fn in a transaction whose row-level security identity is userId. The only way the app
 * runs tenant queries. app_set_user() sets app.current_user_id and the caller's context with
 * set_config(..., true): transaction-local, so nothing leaks to the next user of the pooled
 * connection, nor across a transaction-mode PgBouncer.
 */
export async function withUserTx<T>(sql: Sql, userId: string, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  if (!UUID_RE.test(userId)) throw new TypeError('withUserTx needs a user id (uuid)');
  return (await sql.begin(async (tx) => {
    // Sent now but not awaited: fn's first statement follows it on the same connection in one
    // round trip (statements on a connection run in order, so the context is always set first;
    // if it failed, everything after it fails with it).
    const context = tx`select app_set_user(${userId})`.execute();
    let result: T;
    try {
      result = await fn(tx as unknown as TxSql);
    } catch (err) {
      await context.catch(() => {});
      throw err;
    }
    await context;
    return result;
  })) as T;
}

/** A transaction with no user: row-level security shows nothing (used by auth look-ups). */
export async function withAnonymousTx<T>(sql: Sql, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  return (await sql.begin(async (tx) => fn(tx as unknown as TxSql))) as T;
}
