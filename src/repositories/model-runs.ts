// Shadow and re-score runs of registered models over stored predictions (migration 0071), read
// and written as the owner: a run covers a whole scope whatever row-level security would show
// one user, and its rows are operators' data.
import type { Sql } from '../db/pool.js';
import { RATIO_FIELDS, OUTPUT_FIELDS, TABLE } from './predictions.js';
import type { ModelKind } from '../risk/index.js';

export type ModelRunAction = 'shadow' | 'rescore';
export type ModelRunStatus = 'queued' | 'running' | 'completed' | 'failed';

/** Which stored predictions a run covers: one tenant's, one organization's, or (neither) all. */
export interface RunScope {
  tenantId?: string | null;
  organizationId?: string | null;
}

export interface ModelRunRow {
  id: number;
  kind: ModelKind;
  action: ModelRunAction;
  model_version_id: number;
  model_name: string;
  model_version: string;
  tenant_id: string | null;
  organization_id: string | null;
  status: ModelRunStatus;
  requested_by: string;
  progress: Record<string, number>;
  report: unknown;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const COLS = `r.id::int, r.kind, r.action, r.model_version_id::int, v.name as model_name, v.version as model_version, r.tenant_id, r.organization_id,
  r.status, r.requested_by, r.progress, r.report, r.error, r.created_at, r.started_at, r.finished_at`;

export async function insertRun(sql: Sql, r: { kind: ModelKind; action: ModelRunAction; modelVersionId: number; scope: RunScope; by: string }): Promise<ModelRunRow> {
  const [row] = await sql<{ id: number }[]>`
    insert into model_runs (kind, action, model_version_id, tenant_id, organization_id, requested_by)
    values (${r.kind}, ${r.action}, ${r.modelVersionId}, ${r.scope.tenantId ?? null}, ${r.scope.organizationId ?? null}, ${r.by})
    returning id::int`;
  return (await findRun(sql, row!.id))!;
}

export async function findRun(sql: Sql, id: number): Promise<ModelRunRow | null> {
  const [r] = await sql.unsafe<ModelRunRow[]>(`select ${COLS} from model_runs r join model_versions v on v.id = r.model_version_id where r.id = $1`, [id]);
  return r ?? null;
}

export async function listRuns(sql: Sql, kind?: ModelKind, limit = 50): Promise<ModelRunRow[]> {
  return sql.unsafe<ModelRunRow[]>(
    `select ${COLS} from model_runs r join model_versions v on v.id = r.model_version_id
      where ($1::text is null or r.kind = $1) order by r.created_at desc, r.id desc limit $2`,
    [kind ?? null, limit],
  );
}

export async function startRun(sql: Sql, id: number): Promise<void> {
  await sql`update model_runs set status = 'running', started_at = coalesce(started_at, now()), error = null where id = ${id}`;
}

export async function saveRunProgress(sql: Sql, id: number, progress: Record<string, number>): Promise<void> {
  await sql`update model_runs set progress = ${sql.json(progress)} where id = ${id}`;
}

export async function finishRun(sql: Sql, id: number, progress: Record<string, number>, report: unknown): Promise<void> {
  await sql`update model_runs set status = 'completed', progress = ${sql.json(progress)}, report = ${sql.json(report as never)}, finished_at = now() where id = ${id}`;
}

export async function failRun(sql: Sql, id: number, error: string): Promise<void> {
  await sql`update model_runs set status = 'failed', error = ${error.slice(0, 2000)}, finished_at = now() where id = ${id}`;
}

/** A stored prediction as a run reads it: ratios and outputs as numbers (null where missing). */
export interface StoredPrediction {
  id: string;
  company_id: string | null;
  created_at: Date;
  /** As text, microseconds and all: the re-score writes only a row still as it was read. */
  updated_at: string;
  values: Record<string, number | null>;
  risk_level: string;
  model_name: string | null;
  model_version: string | null;
  organization_id: string | null;
  access_level: string;
  created_by: string | null;
  tenant_id: string | null;
}

// A scope's predictions with the organization and creator its rule reads.
const scoped = (kind: ModelKind) =>
  `${TABLE[kind]} p left join organizations o on o.id = p.organization_id left join users u on u.id = p.created_by`;

// The scope's rule in SQL; $1 is the scope's id where it has one.
function scopeClause(scope: RunScope): { sql: string; param: string | null } {
  if (scope.organizationId) return { sql: 'p.organization_id = $1::uuid', param: scope.organizationId };
  if (scope.tenantId) return { sql: '(o.tenant_id = $1::uuid or (p.organization_id is null and u.tenant_id = $1::uuid))', param: scope.tenantId };
  return { sql: '$1::uuid is null', param: null };
}

export async function countInScope(sql: Sql, kind: ModelKind, scope: RunScope, notMadeBy?: { name: string; version: string }): Promise<number> {
  const s = scopeClause(scope);
  const [r] = await sql.unsafe<{ n: number }[]>(
    `select count(*)::int as n from ${scoped(kind)}
      where ${s.sql} and ($2::text is null or (p.model_name, p.model_version) is distinct from ($2::text, $3::text))`,
    [s.param, notMadeBy?.name ?? null, notMadeBy?.version ?? null],
  );
  return r!.n;
}

/**
 * The next `limit` predictions of the scope after `afterId`, in id order (a keyset walk of the
 * primary key). With `notMadeBy`, only those another model (or no recorded model) made.
 */
export async function readScopeBatch(
  sql: Sql,
  kind: ModelKind,
  scope: RunScope,
  afterId: string | null,
  limit: number,
  notMadeBy?: { name: string; version: string },
): Promise<StoredPrediction[]> {
  const s = scopeClause(scope);
  const fields = [...RATIO_FIELDS[kind], ...OUTPUT_FIELDS[kind].filter((f) => f !== 'risk_level')];
  const rows = await sql.unsafe<Array<Record<string, unknown>>>(
    `select p.id, p.company_id, p.created_at, p.updated_at::text as updated_at, ${fields.map((f) => `p.${f}::float8 as ${f}`).join(', ')},
            p.risk_level, p.model_name, p.model_version, p.organization_id, p.access_level, p.created_by, coalesce(o.tenant_id, u.tenant_id) as tenant_id
       from ${scoped(kind)}
      where ${s.sql} and ($2::uuid is null or p.id > $2::uuid)
        and ($4::text is null or (p.model_name, p.model_version) is distinct from ($4::text, $5::text))
      order by p.id limit $3`,
    [s.param, afterId, limit, notMadeBy?.name ?? null, notMadeBy?.version ?? null],
  );
  return rows.map((r) => {
    const values: Record<string, number | null> = {};
    for (const f of fields) values[f] = r[f] as number | null;
    return {
      id: r.id as string,
      company_id: r.company_id as string | null,
      created_at: r.created_at as Date,
      updated_at: r.updated_at as string,
      values,
      risk_level: r.risk_level as string,
      model_name: r.model_name as string | null,
      model_version: r.model_version as string | null,
      organization_id: r.organization_id as string | null,
      access_level: r.access_level as string,
      created_by: r.created_by as string | null,
      tenant_id: r.tenant_id as string | null,
    };
  });
}

/** Default events of the companies in a scope's predictions (for labels). */
export async function defaultsInScope(sql: Sql, kind: ModelKind, scope: RunScope): Promise<Array<{ company_id: string; default_date: Date }>> {
  const s = scopeClause(scope);
  return sql.unsafe(
    `select d.company_id, d.default_date::timestamp as default_date from company_default_events d
      where d.company_id in (select p.company_id from ${scoped(kind)} where ${s.sql})`,
    [s.param],
  );
}

export interface RescoreWrite {
  id: string;
  updated_at: string;
  outputs: Record<string, number | string>;
  model_name: string;
  model_version: string;
  tenant_id: string | null;
  before: Record<string, unknown>;
  after: Record<string, unknown>;
}

/**
 * Writes re-scored outputs and one audit_logs row per prediction (the old values in `before`),
 * in one statement and transaction. A row changed since it was read (updated_at moved) is left
 * alone. Returns the ids written. The update triggers keep the rollups and company_latest exact
 * and put changes of watched companies in the alerts outbox (migrations 0040, 0070).
 */
export async function applyRescore(sql: Sql, kind: ModelKind, writes: readonly RescoreWrite[]): Promise<Array<{ id: string; access_level: string; organization_id: string | null; created_by: string | null }>> {
  if (writes.length === 0) return [];
  const outs = OUTPUT_FIELDS[kind];
  const types: Record<string, string> = { risk_level: 'text' };
  const input = writes.map((w) => ({ id: w.id, updated_at: w.updated_at, ...w.outputs, model_name: w.model_name, model_version: w.model_version, tenant_id: w.tenant_id, before: w.before, after: w.after }));
  return sql.begin(async (tx) =>
    tx.unsafe(
      `with input as (
         select * from jsonb_to_recordset($1::jsonb) as x(id uuid, updated_at text, ${outs.map((f) => `${f} ${types[f] ?? 'numeric'}`).join(', ')},
                                                         model_name text, model_version text, tenant_id uuid, before jsonb, after jsonb)),
       upd as (
         update ${TABLE[kind]} p set ${outs.map((f) => `${f} = i.${f}`).join(', ')}, model_name = i.model_name, model_version = i.model_version
           from input i where p.id = i.id and p.updated_at = i.updated_at::timestamp
         returning p.id, p.access_level, p.organization_id, p.created_by),
       logged as (
         insert into audit_logs (user_id, tenant_id, organization_id, action, table_name, row_id, before, after)
         select null, i.tenant_id, u.organization_id, 'rescore', '${TABLE[kind]}', u.id::text, i.before, i.after
           from upd u join input i on i.id = u.id)
       select id, access_level, organization_id, created_by from upd`,
      [sql.json(input as never)],
    ),
  ) as Promise<Array<{ id: string; access_level: string; organization_id: string | null; created_by: string | null }>>;
}
