import type { Sql, TxSql } from './pool.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** postgres.js codes and SQLSTATEs of a connection that ended (server shut down or crashed, network). */
const CONNECTION_LOST = /^(CONNECTION_CLOSED|CONNECTION_ENDED|CONNECTION_DESTROYED|ECONNRESET|EPIPE|57P0[1-3]|08\w{3})$/;
/** ... and of one that could not be made. */
const CANNOT_CONNECT = /^(ECONNREFUSED|ETIMEDOUT|CONNECT_TIMEOUT)$/;

const codeOf = (err: unknown): string => String((err as { code?: unknown } | null)?.code ?? '');

function connectionLost(err: unknown): boolean {
  return CONNECTION_LOST.test(codeOf(err));
}

/** The database went away or cannot be reached: an outage a client may retry, not a bug. */
export function databaseUnavailable(err: unknown): boolean {
  return connectionLost(err) || CANNOT_CONNECT.test(codeOf(err));
}

/**
 * The server ended the session instead of answering (57P01 admin_shutdown, 57P02 crash_shutdown):
 * whatever the statement or transaction was doing did not commit, so running it once more on
 * another connection cannot apply anything twice. After a restart, a pooled connection can give
 * that answer to the first statement sent on it (seen in the fault suite: one request failing
 * ten seconds after the database was back).
 */
function serverEndedSession(err: unknown): boolean {
  const code = codeOf(err);
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
  return onceMoreIfServerEnded(() => pipelinedTx(sql, fn, (c) => c`select app_set_user(${userId})`));
}

/** A transaction with no user: row-level security shows nothing (used by auth look-ups). */
export async function withAnonymousTx<T>(sql: Sql, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  return onceMoreIfServerEnded(() => pipelinedTx(sql, fn, null));
}

type Reserved = Awaited<ReturnType<Sql['reserve']>>;

/**
 * A transaction on a connection of its own whose BEGIN (and the caller's context) go out with
 * fn's first statements in one write and one round trip: statements on a connection run in
 * order, so the context is always set first, and if BEGIN or the context failed, everything
 * after them fails with them. postgres.js's sql.begin() waits for BEGIN's answer before running
 * fn, a round trip and a socket write more per transaction (a list page made four).
 */
async function pipelinedTx<T>(sql: Sql, fn: (tx: TxSql) => Promise<T>, context: ((c: Reserved) => PromiseLike<unknown> & { execute(): unknown }) | null): Promise<T> {
  const c = await sql.reserve();
  let open = false;
  let lost = false;
  // The first failure is the one to report (a session the server ended answers BEGIN with
  // 57P01, then fn's statements find the connection closed): answers arrive in order, so these
  // handlers have run before fn's statement rejects.
  let first: unknown = null;
  const note = (err: unknown) => {
    first ??= err;
  };
  try {
    const begin = c`begin`.execute() as unknown as Promise<unknown>;
    open = true;
    const ctx = context ? (context(c).execute() as unknown as Promise<unknown>) : null;
    begin.catch(note);
    ctx?.catch(note);
    const result = await fn(c as unknown as TxSql);
    await begin;
    await ctx;
    await c`commit`;
    open = false;
    return result;
  } catch (err) {
    const cause = first ?? err;
    if (connectionLost(cause)) {
      // The pool has taken the closed connection back to reconnect it: releasing it as well
      // would hand the dead socket to the next caller (postgres.js 3.4), and a rollback on it
      // would never be answered.
      lost = true;
    } else if (open) {
      await c`rollback`.catch(() => {});
    }
    throw cause;
  } finally {
    if (!lost) c.release();
  }
}
