// Loading millions of predictions for scale tests and benchmarks, as the owner, in a fraction of
// the time row-by-row maintenance would take: the secondary indexes of the loaded tables are
// dropped and rebuilt around the load (CREATE INDEX sorts once instead of inserting millions of
// random keys), triggers are off while loading (session_replication_role = replica), and the
// rollups and company_latest are then recomputed from the rows (rollup_rebuild()), exactly what
// the triggers would have written.
import type { Sql } from '../../src/db/pool.js';

const TABLES = ['companies', 'annual_predictions', 'quarterly_predictions'];

export const SECTORS = ['Industrials', 'Utilities', 'Energy', 'Financials', 'Health Care', 'Information Technology', 'Materials',
  'Consumer Staples', 'Consumer Discretionary', 'Real Estate', 'Communication Services'];

/**
 * Runs `load` (inside one transaction, triggers off) with the tables' secondary indexes dropped,
 * then restores everything. With triggers off, `load` writes what they would have: a prediction's
 * access_level, organization_id and sector are its company's.
 */
export async function bulkLoad(adminSql: Sql, load: (tx: Sql) => Promise<void>): Promise<void> {
  // Indexes that back a constraint (primary keys, UNIQUE) stay: they cannot be dropped alone.
  const indexes = await adminSql<{ name: string; def: string }[]>`
    select i.indexname as name, i.indexdef as def from pg_indexes i
    where i.schemaname = 'public' and i.tablename = any(${TABLES})
      and not exists (select 1 from pg_constraint c where c.conindid = (quote_ident(i.indexname))::regclass)`;
  await adminSql.begin(async (tx) => {
    for (const i of indexes) await tx.unsafe(`drop index ${i.name}`);
    await tx`set local session_replication_role = replica`;
    await load(tx as unknown as Sql);
    await tx`set local session_replication_role = origin`;
    await tx`set local maintenance_work_mem = '512MB'`;
    for (const i of indexes) await tx.unsafe(i.def);
  });
  await adminSql`analyze`;
  await adminSql`select rollup_rebuild()`;
  await adminSql`analyze`;
}

/**
 * `predictions` annual predictions in one organization (10 reporting years per company, 2015–
 * 2024), created over the `days` before `until`, by `creator`; probabilities skewed towards low
 * risk like a real book. Companies are named `${prefix}<n>` in eleven sectors.
 */
export async function loadOrganizationBook(
  adminSql: Sql,
  opts: { organizationId: string; creatorId: string; predictions: number; prefix?: string; days?: number; until?: Date },
): Promise<{ companies: number; predictions: number }> {
  const years = 10;
  const companies = Math.max(1, Math.round(opts.predictions / years));
  const prefix = opts.prefix ?? 'S';
  const days = opts.days ?? 700;
  const until = opts.until ?? new Date();
  await bulkLoad(adminSql, async (tx) => {
    await tx`
      insert into companies (symbol, name, sector, access_level, organization_id, created_by, created_at)
      select ${prefix} || g, 'Scale company ' || g, (${SECTORS}::text[])[1 + g % ${SECTORS.length}], 'organization', ${opts.organizationId}::uuid,
             ${opts.creatorId}::uuid, ${until}::timestamptz - ${days} * interval '1 day'
      from generate_series(1, ${companies}) g`;
    await tx`
      insert into annual_predictions (company_id, created_by, reporting_year, long_term_debt_to_total_capital, total_debt_to_ebitda,
        net_income_margin, ebit_to_interest_expense, return_on_assets, probability, logistic_probability, step_probability,
        risk_level, confidence, model_name, model_version, access_level, organization_id, sector, created_at)
      select id, created_by, year, 35.2, 2.1, 7.5, 6.3, 4.9, pr, pr, pr,
             case when pr < 0.02 then 'LOW' when pr < 0.05 then 'MEDIUM' when pr < 0.15 then 'HIGH' else 'CRITICAL' end,
             0.8, 'annual-scorecard', 'scale', 'organization', organization_id, sector, at
      from (select c.id, c.created_by, (2015 + y)::text as year, round((power(random(), 3) * 0.6)::numeric, 6) as pr, c.organization_id, c.sector,
                   ${until}::timestamptz - random() * ${days} * interval '1 day' as at
            from companies c cross join generate_series(0, ${years - 1}) y
            where c.organization_id = ${opts.organizationId} and c.symbol like ${prefix + '%'}) s`;
  });
  const [n] = await adminSql<{ n: number }[]>`select count(*)::int as n from annual_predictions where organization_id = ${opts.organizationId}`;
  return { companies, predictions: n!.n };
}
