import type { TxSql } from '../db/pool.js';
import type { Principal } from '../domain/principal.js';

const SECRET_KEYS = new Set(['password', 'password_hash', 'token', 'token_hash', 'join_token', 'join_token_hash', 'current_password', 'new_password']);

/** Row images go to the audit log without secrets, whatever the table. */
export function scrub(row: unknown): unknown {
  if (row === null || row === undefined) return null;
  if (Array.isArray(row)) return row.map(scrub);
  if (row instanceof Date) return row.toISOString();
  if (typeof row !== 'object') return row;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = SECRET_KEYS.has(k) ? '[redacted]' : scrub(v);
  return out;
}

export interface AuditEntry {
  action: string;
  table: string;
  rowId: string | null;
  before?: unknown;
  after?: unknown;
}

/** Written in the caller's transaction, so the change and its record commit or vanish together. */
export async function audit(tx: TxSql, who: Principal, e: AuditEntry, ip?: string | null): Promise<void> {
  await tx`
    insert into audit_logs (user_id, tenant_id, organization_id, action, table_name, row_id, before, after, ip)
    values (${who.userId}, ${who.tenantId}, ${who.organizationId}, ${e.action}, ${e.table}, ${e.rowId},
            ${e.before === undefined ? null : tx.json(scrub(e.before) as never)},
            ${e.after === undefined ? null : tx.json(scrub(e.after) as never)}, ${ip ?? null})`;
}
