import type { Sql, TxSql } from './pool.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The server ended the session instead of answering (57P01 admin_shutdown, 57P02 crash_shutdown):
 * whatever the statement or transaction was doing did not commit, so running it once more on
 * another connection cannot apply anything twice. After a restart, a pooled connection can give
 * that answer to the first statement sent on it (seen in the fault suite: one request failing
 * ten seconds after the database was back).
 */
function serverEndedSession(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '57P01' || code === '57P02';
}

/** Runs `attempt` again, once, when the server ended the session under it. */
export async function onceMoreIfServerEnded<T>(attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt();
  } catch (err) {
    if (!serverEndedSession(err)) throw err;
    return attempt();
  }
}

/**
 * Runs fn in a transaction whose row-level security identity is userId. The only way the app
 * runs tenant queries. app_set_user() sets app.current_user_id and the caller's context with
 * set_config(..., true): transaction-local, so nothing leaks to the next user of the pooled
 * connection, nor across a transaction-mode PgBouncer.
 */
export async function withUserTx<T>(sql: Sql, userId: string, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  if (!UUID_RE.test(userId)) throw new TypeError('withUserTx needs a user id (uuid)');
  return (await onceMoreIfServerEnded(() => sql.begin(async (tx) => {
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
  }))) as T;
}

/** A transaction with no user: row-level security shows nothing (used by auth look-ups). */
export async function withAnonymousTx<T>(sql: Sql, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  return (await onceMoreIfServerEnded(() => sql.begin(async (tx) => fn(tx as unknown as TxSql)))) as T;
}
