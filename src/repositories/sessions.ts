import type { TxSql } from '../db/pool.js';

export interface SessionRow {
  id: string;
  user_id: string;
  token_hash: string;
  created_at: Date;
  last_activity: Date;
  expires_at: Date;
  revoked_at: Date | null;
  ip: string | null;
  user_agent: string | null;
}

export async function insertSession(
  tx: TxSql,
  s: { user_id: string; token_hash: string; expires_at: Date; ip: string | null; user_agent: string | null },
): Promise<SessionRow> {
  const [row] = await tx<SessionRow[]>`
    insert into user_sessions (user_id, token_hash, expires_at, ip, user_agent)
    values (${s.user_id}, ${s.token_hash}, ${s.expires_at}, ${s.ip}, ${s.user_agent})
    returning *`;
  return row!;
}

/** Anonymous look-up by token hash (before there is a current user). */
export async function lookupSession(
  tx: TxSql,
  tokenHash: string,
): Promise<{ session_id: string; user_id: string; expires_at: Date; revoked_at: Date | null; last_activity: Date; user_active: boolean } | null> {
  const [row] = await tx<{ session_id: string; user_id: string; expires_at: Date; revoked_at: Date | null; last_activity: Date; user_active: boolean }[]>`
    select * from app_session_lookup(${tokenHash})`;
  return row ?? null;
}

/**
 * Marks activity; returns false when the session is no longer valid in the database: revoked,
 * past its absolute expiry, or idle for longer than idleSeconds (last_activity is what the idle
 * timeout is measured from, so a session idle too long is not revived by touching it).
 */
export async function touchSession(tx: TxSql, id: string, idleSeconds: number): Promise<boolean> {
  const rows = await tx`
    update user_sessions set last_activity = CURRENT_TIMESTAMP
    where id = ${id} and revoked_at is null and expires_at > CURRENT_TIMESTAMP
      and last_activity > CURRENT_TIMESTAMP - make_interval(secs => ${idleSeconds})
    returning id`;
  return rows.length === 1;
}

export async function listSessions(tx: TxSql, userId: string): Promise<SessionRow[]> {
  return tx<SessionRow[]>`
    select * from user_sessions where user_id = ${userId} and revoked_at is null and expires_at > CURRENT_TIMESTAMP
    order by last_activity desc`;
}

export async function revokeSession(tx: TxSql, id: string, userId?: string): Promise<string | null> {
  const [row] = await tx<{ token_hash: string }[]>`
    update user_sessions set revoked_at = CURRENT_TIMESTAMP
    where id = ${id} and revoked_at is null ${userId ? tx`and user_id = ${userId}` : tx``}
    returning token_hash`;
  return row?.token_hash ?? null;
}

export async function revokeUserSessions(tx: TxSql, userId: string, exceptId?: string): Promise<string[]> {
  const rows = await tx<{ token_hash: string }[]>`
    update user_sessions set revoked_at = CURRENT_TIMESTAMP
    where user_id = ${userId} and revoked_at is null ${exceptId ? tx`and id <> ${exceptId}` : tx``}
    returning token_hash`;
  return rows.map((r) => r.token_hash);
}

/** Every session of the user that may still have a Redis copy (revoked ones included). */
export async function cachedSessionHashes(tx: TxSql, userId: string): Promise<string[]> {
  const rows = await tx<{ token_hash: string }[]>`
    select token_hash from user_sessions where user_id = ${userId} and expires_at > CURRENT_TIMESTAMP`;
  return rows.map((r) => r.token_hash);
}

/**
 * Sessions (revoked ones included) of the members of an organization or a tenant that may still
 * have a Redis copy, as far as the caller may read them.
 */
export async function scopeSessionHashes(tx: TxSql, scope: { organizationId: string } | { tenantId: string }): Promise<string[]> {
  const rows = await tx<{ token_hash: string }[]>`
    select s.token_hash from user_sessions s join users u on u.id = s.user_id
    where ${'organizationId' in scope ? tx`u.organization_id = ${scope.organizationId}` : tx`u.tenant_id = ${scope.tenantId}`}
      and u.role <> 'super_admin' and s.expires_at > CURRENT_TIMESTAMP`;
  return rows.map((r) => r.token_hash);
}
