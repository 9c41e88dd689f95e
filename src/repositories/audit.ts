import type { TxSql } from '../db/pool.js';
import type { Principal } from '../domain/principal.js';
import { afterCursor, keyColumns, orderBy, TOTAL_CAP, type CursorValues, type SortKey } from './keyset.js';

const SECRET_KEYS = new Set(['password', 'password_hash', 'token', 'token_hash', 'join_token', 'join_token_hash', 'current_password', 'new_password']);

/** Row images go to the audit log without secrets, whatever the table. */
function scrub(row: unknown): unknown {
  if (row === null || row === undefined) return null;
  if (Array.isArray(row)) return row.map(scrub);
  if (row instanceof Date) return row.toISOString();
  if (typeof row !== 'object') return row;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = SECRET_KEYS.has(k) ? '[redacted]' : scrub(v);
  return out;
}

interface AuditEntry {
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

export interface AuditRow {
  id: number;
  user_id: string | null;
  tenant_id: string | null;
  organization_id: string | null;
  action: string;
  table_name: string;
  row_id: string | null;
  before: unknown;
  after: unknown;
  ip: string | null;
  created_at: Date;
}

export interface AuditFilter {
  table?: string;
  rowId?: string;
  userId?: string;
  action?: string;
  from?: Date;
  to?: Date;
}

/** The audit log lists newest first, by (created_at, id). */
export const AUDIT_KEY: SortKey = { cols: ['created_at', 'id'], types: ['timestamp', 'int'], casts: ['timestamp', 'bigint'] };

/**
 * One keyset page (plus one row) of the audit log the caller may read (row-level security: a
 * tenant admin its tenant's, a super admin all). `tenantId` names the index a tenant admin's
 * page walks, so its cost does not grow with other tenants' history.
 */
export async function listAudit(
  tx: TxSql,
  f: AuditFilter,
  page: { fetch: number; after?: CursorValues; tenantId?: string },
): Promise<{ rows: Array<AuditRow & { sort_key: CursorValues }>; counted: number }> {
  const where = tx`true
    ${page.tenantId ? tx`and a.tenant_id = ${page.tenantId}` : tx``}
    ${f.table ? tx`and a.table_name = ${f.table}` : tx``}
    ${f.rowId ? tx`and a.row_id = ${f.rowId}` : tx``}
    ${f.userId ? tx`and a.user_id = ${f.userId}` : tx``}
    ${f.action ? tx`and a.action = ${f.action}` : tx``}
    ${f.from ? tx`and a.created_at >= ${f.from}::timestamp` : tx``}
    ${f.to ? tx`and a.created_at < ${f.to}::timestamp` : tx``}`;
  const [rows, [c]] = await Promise.all([
    tx<Array<AuditRow & { k0: string; k1: number }>>`
      select a.id, a.user_id, a.tenant_id, a.organization_id, a.action, a.table_name, a.row_id, a.before, a.after, host(a.ip) as ip, a.created_at
             ${keyColumns(tx, 'a', AUDIT_KEY)}
      from audit_logs a where ${where} ${afterCursor(tx, 'a', AUDIT_KEY, true, page.after)}
      order by ${orderBy(tx, 'a', AUDIT_KEY, true)} limit ${page.fetch}`,
    tx<{ n: number }[]>`select count(*)::int as n from (select 1 from audit_logs a where ${where} limit ${TOTAL_CAP + 1}) z`,
  ]);
  return { rows: rows.map(({ k0, k1, ...r }) => ({ ...(r as AuditRow), sort_key: [k0, Number(k1)] })), counted: c!.n };
}
