/**
 * Loading one chunk of validated bulk rows: COPY into a TEMP staging table, then one set-based
 * upsert for companies (in the uploader's scope, matched by symbol through the scope's partial
 * unique index) and one for predictions (ON CONFLICT on the spec's unique key). Runs inside the
 * caller's withUserTx, so row-level security applies to every row written.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TxSql } from '../db/pool.js';
import { fieldNamesOf, type ModelKind } from '../risk/index.js';
import type { CompanyInput, ComputedPrediction, Scope } from '../services/prediction-compute.js';

export interface StagedRow {
  line: number;
  company: CompanyInput;
  computed: ComputedPrediction;
}

const OUTPUTS: Record<ModelKind, readonly string[]> = {
  annual: ['probability', 'logistic_probability', 'step_probability', 'risk_level', 'confidence'],
  quarterly: ['ensemble_probability', 'logistic_probability', 'gbm_probability', 'step_probability', 'risk_level', 'confidence'],
};

function stageTable(kind: ModelKind): string {
  return `bulk_stage_${kind}`;
}

function periodColumns(kind: ModelKind): string[] {
  return kind === 'annual' ? ['reporting_year'] : ['reporting_year', 'reporting_quarter'];
}

/** Prediction columns written from the staging table (same order in both). */
function predictionColumns(kind: ModelKind): string[] {
  return [...periodColumns(kind), ...fieldNamesOf(kind), ...OUTPUTS[kind], 'model_name', 'model_version'];
}

function stageDdl(kind: ModelKind): string {
  const ratio = fieldNamesOf(kind).map((f) => `${f} numeric`);
  const outputs = OUTPUTS[kind].map((o) => (o === 'risk_level' ? 'risk_level text' : `${o} numeric`));
  return `CREATE TEMP TABLE IF NOT EXISTS ${stageTable(kind)} (
    line integer, symbol text, name text, market_cap bigint, sector text, country text, exchange text,
    ${periodColumns(kind).map((c) => `${c} text`).join(', ')},
    ${[...ratio, ...outputs].join(', ')},
    model_name text, model_version text
  ) ON COMMIT DELETE ROWS`;
}

function copyText(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'number') return String(v);
  return String(v).replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

function stageLine(kind: ModelKind, r: StagedRow): string {
  const c = r.company;
  const p = r.computed;
  const vals: unknown[] = [r.line, c.symbol, c.name, c.market_cap, c.sector, c.country, c.exchange, p.reporting_year];
  if (p.kind === 'quarterly') vals.push(p.reporting_quarter);
  const ratios = p.ratios as unknown as Record<string, number | null>;
  for (const f of fieldNamesOf(kind)) vals.push(ratios[f]);
  const outputs = p.outputs as unknown as Record<string, unknown>;
  for (const o of OUTPUTS[kind]) vals.push(outputs[o]);
  vals.push(p.model.name, p.model.version);
  return vals.map(copyText).join('\t');
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A uuid as an SQL literal (validated, so inlining it is safe), or NULL. */
function uuidLit(v: string | null): string {
  if (v === null) return 'NULL::uuid';
  if (!UUID_RE.test(v)) throw new TypeError(`not a uuid: ${v}`);
  return `'${v.toLowerCase()}'::uuid`;
}

function scopePredicate(scope: Scope, alias: string): string {
  switch (scope.access_level) {
    case 'personal':
      return `${alias}.access_level = 'personal' AND ${alias}.created_by = ${uuidLit(scope.created_by)}`;
    case 'organization':
      return `${alias}.access_level = 'organization' AND ${alias}.organization_id = ${uuidLit(scope.organization_id)}`;
    case 'system':
      return `${alias}.access_level = 'system'`;
  }
}

function conflictTarget(scope: Scope): string {
  switch (scope.access_level) {
    case 'personal':
      return `(created_by, symbol) WHERE access_level = 'personal'`;
    case 'organization':
      return `(organization_id, symbol) WHERE access_level = 'organization'`;
    case 'system':
      return `(symbol) WHERE access_level = 'system'`;
  }
}

interface ChunkStoreResult {
  /** Predictions inserted or updated. */
  stored: number;
  /** Ids of existing predictions this chunk replaced (their cached copies are stale). */
  replaced: string[];
  /** Rows refused by the database's access rules (e.g. another member's prediction). */
  denied: Array<{ line: number; reason: string }>;
}

/** Stages and upserts rows (already de-duplicated by company + period) in the current transaction. */
export async function storeChunk(tx: TxSql, kind: ModelKind, scope: Scope, rows: readonly StagedRow[]): Promise<ChunkStoreResult> {
  if (rows.length === 0) return { stored: 0, replaced: [], denied: [] };
  const stage = stageTable(kind);
  await tx.unsafe(stageDdl(kind));
  const lines: string[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) lines[i] = stageLine(kind, rows[i]!);
  const writable = await tx.unsafe(`COPY ${stage} FROM STDIN`).writable();
  await pipeline(Readable.from([lines.join('\n') + '\n']), writable);

  // Companies first: new symbols are created in the uploader's scope; existing ones are kept as
  // they are (DO NOTHING: a bulk file never rewrites a company another member maintains).
  await tx.unsafe(
    `INSERT INTO companies (symbol, name, market_cap, sector, country, exchange, access_level, organization_id, created_by)
     SELECT DISTINCT ON (symbol) symbol, name, market_cap, sector, country, exchange, '${scope.access_level}', ${uuidLit(scope.organization_id)}, ${uuidLit(scope.created_by)}
     FROM ${stage} ORDER BY symbol, line DESC
     ON CONFLICT ${conflictTarget(scope)} DO NOTHING`,
  );

  const table = `${kind}_predictions`;
  const period = periodColumns(kind);
  const denied: ChunkStoreResult['denied'] = [];
  if (scope.access_level === 'organization') {
    // An organization's prediction created by another member may only be replaced by those the
    // access model lets modify it (its creator, org/tenant admins); for others the row is an
    // error rather than a failed chunk.
    const gone = await tx.unsafe<{ line: number }[]>(
      `DELETE FROM ${stage} s USING companies c, ${table} p
       WHERE ${scopePredicate(scope, 'c')} AND c.symbol = s.symbol AND p.company_id = c.id
         AND ${period.map((col) => `p.${col} = s.${col}`).join(' AND ')}
         AND NOT app_can_modify(p.access_level, p.organization_id, p.created_by)
       RETURNING s.line`,
    );
    for (const g of gone)
      denied.push({ line: g.line, reason: 'a prediction for this company and period exists and was created by another member; only its creator or an admin may replace it' });
  }

  const cols = predictionColumns(kind);
  const updatable = cols.filter((c) => !period.includes(c));
  // xmax <> 0 marks a row the upsert updated rather than inserted.
  const [res] = await tx.unsafe<{ n: number; replaced: string[] }[]>(
    `WITH up AS (
       INSERT INTO ${table} (company_id, created_by, ${cols.join(', ')})
       SELECT c.id, ${uuidLit(scope.created_by)}, ${cols.map((c) => `s.${c}`).join(', ')}
       FROM ${stage} s JOIN companies c ON c.symbol = s.symbol AND ${scopePredicate(scope, 'c')}
       ON CONFLICT (company_id, ${period.join(', ')}) DO UPDATE SET
         ${updatable.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}
       RETURNING id, xmax <> 0 AS updated)
     SELECT count(*)::int AS n, coalesce(array_agg(id) FILTER (WHERE updated), '{}') AS replaced FROM up`,
  );
  return { stored: res!.n, replaced: res!.replaced, denied };
}
