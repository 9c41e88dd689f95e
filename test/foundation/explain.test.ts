// At 1,000,000 predictions, every list page, total and summary the API offers reads O(page)
// rows of the predictions table, never O(rows visible): measured with PostgreSQL's own
// per-transaction counters (pg_stat_xact_user_tables) around the very statements the
// repositories send, as app_user under row-level security.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withUserTx } from '../../src/db/tx.js';
import type { TxSql } from '../../src/db/pool.js';
import { countPredictions, isRare, listPredictions, type PredictionSort } from '../../src/repositories/predictions.js';
import { listCompanies } from '../../src/repositories/companies.js';
import { listPortfolio, type PortfolioSort } from '../../src/repositories/portfolio.js';
import { rollupSummary, topRisk } from '../../src/repositories/rollups.js';
import { scopesOf, usePlans } from '../../src/repositories/keyset.js';
import postgres from 'postgres';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { bulkLoad, SECTORS } from '../helpers/scale-data.js';

let db: TestDatabase;
let member: string;
let tenantAdmin: string;
let superAdmin: string;

/**
 * 1,000,000 annual predictions spread like a multi-tenant deployment: 5 tenants, 50
 * organizations, 500 users, 2 % shared system rows, 10 % personal rows, the rest organization
 * rows, created over the last 800 days.
 */
beforeAll(async () => {
  db = await createTestDatabase();
  const a = db.adminSql;
  await a`insert into tenants (name) select 'tenant ' || g from generate_series(1, 5) g`;
  await a`insert into organizations (tenant_id, name) select (select id from tenants order by name limit 1 offset (g % 5)), 'org ' || g from generate_series(1, 50) g`;
  await a`insert into users (tenant_id, organization_id, email, username, role, is_verified)
          select o.tenant_id, o.id, 'u' || g || '@x.com', 'u' || g, 'org_member', true
          from generate_series(1, 500) g join lateral (select id, tenant_id from organizations order by name limit 1 offset (g % 50)) o on true`;
  await a`insert into users (tenant_id, email, username, role, is_verified) select id, 'ta@x.com', 'ta', 'tenant_admin', true from tenants order by name limit 1`;
  await a`insert into users (email, username, role, is_verified) values ('sa@x.com', 'sa', 'super_admin', true)`;
  await bulkLoad(a, async (tx) => {
    await tx`insert into companies (symbol, name, sector, access_level, organization_id, created_by)
            select 'C' || g, 'Company ' || g, (${SECTORS}::text[])[1 + g % ${SECTORS.length}],
                   case when g % 50 = 0 then 'system' when g % 10 = 1 then 'personal' else 'organization' end,
                   case when g % 50 = 0 or g % 10 = 1 then null else u.organization_id end, u.id
            from generate_series(1, 20000) g join lateral (select id, organization_id from users where username like 'u%' order by username limit 1 offset (g % 500)) u on true`;
    await tx`insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level, access_level, organization_id, sector, created_at)
             select id, created_by, year, p, case when p < 0.02 then 'LOW' when p < 0.05 then 'MEDIUM' when p < 0.15 then 'HIGH' else 'CRITICAL' end,
                    access_level, organization_id, sector, at
             from (select c.id, c.created_by, (1975 + y)::text as year, round((random() * 0.3)::numeric, 6) as p,
                          c.access_level, c.organization_id, c.sector, now() - (random() * interval '800 days') as at
                   from companies c cross join generate_series(0, 49) y) s`;
  });
  const [m] = await a<{ id: string }[]>`select id from users where username = 'u1'`;
  member = m!.id;
  // A rare sector: five of the member's organization's companies move to it (through the
  // triggers: their predictions and the rollups follow).
  await a`update companies set sector = 'Shipping' where id in (
            select id from companies where organization_id = (select organization_id from users where id = ${member}) order by id limit 5)`;
  await a`analyze`;
  tenantAdmin = (await a<{ id: string }[]>`select id from users where username = 'ta'`)[0]!.id;
  superAdmin = (await a<{ id: string }[]>`select id from users where username = 'sa'`)[0]!.id;
}, 600_000);

afterAll(async () => {
  await db.drop();
});

interface Reads {
  rows: number;
  seqScans: number;
}

/** Rows of `table` read (sequentially or fetched through an index) by fn, in the caller's transaction. */
async function reads<T>(userId: string, table: string, fn: (tx: TxSql) => Promise<T>): Promise<{ result: T; reads: Reads }> {
  return withUserTx(db.appSql, userId, async (tx) => {
    const counters = async () => {
      const [r] = await tx<{ rows: string; seq: string }[]>`
        select coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0) as rows, coalesce(sum(seq_scan), 0) as seq
        from pg_stat_xact_user_tables where relname = ${table}`;
      return { rows: Number(r!.rows), seq: Number(r!.seq) };
    };
    const before = await counters();
    const result = await fn(tx);
    const after = await counters();
    return { result, reads: { rows: after.rows - before.rows, seqScans: after.seq - before.seq } };
  });
}

const SORTS: PredictionSort[] = ['-created_at', 'created_at', '-probability', 'probability', '-reporting_year', 'reporting_year'];
const LIMIT = 50;

describe('a page at 1,000,000 predictions reads O(page) rows', () => {
  it('has 1,000,000 predictions loaded, and a member sees only its scopes', async () => {
    const [r] = await db.adminSql<{ n: number }[]>`select count(*)::int as n from annual_predictions`;
    expect(r!.n).toBe(1_000_000);
    const [count] = await withUserTx(db.appSql, member, (tx) => tx<{ n: number }[]>`select count(*)::int as n from annual_predictions`);
    expect(count!.n).toBeLessThan(100_000);
    expect(count!.n).toBeGreaterThan(20_000);
  });

  it.each(SORTS)('predictions sorted by %s: page 1 and a page deep in the list', async (sort) => {
    const first = await reads(member, 'annual_predictions', async (tx) => listPredictions(tx, 'annual', {}, { sort, fetch: LIMIT + 1, scopes: await scopesOf(tx) }));
    expect(first.result.length).toBe(LIMIT + 1);
    // One walk per scope the member reads (system, its own, its organization), each <= a page.
    expect(first.reads.seqScans).toBe(0);
    expect(first.reads.rows).toBeLessThanOrEqual(3 * (LIMIT + 1));
    // Walk 40 pages in, then measure one more: the same cost.
    let after = first.result[LIMIT - 1]!.sort_key;
    for (let i = 0; i < 40; i++) {
      const page = await withUserTx(db.appSql, member, async (tx) => listPredictions(tx, 'annual', {}, { sort, fetch: LIMIT + 1, after, scopes: await scopesOf(tx) }));
      after = page[LIMIT - 1]!.sort_key;
    }
    const deep = await reads(member, 'annual_predictions', async (tx) => listPredictions(tx, 'annual', {}, { sort, fetch: LIMIT + 1, after, scopes: await scopesOf(tx) }));
    expect(deep.result.length).toBe(LIMIT + 1);
    expect(deep.reads.seqScans).toBe(0);
    expect(deep.reads.rows).toBeLessThanOrEqual(3 * (LIMIT + 1));
  });

  it.each([
    ['risk level', { riskLevel: 'HIGH' as const }, 20],
    ['reporting year', { year: '2001' }, 60],
    ['sector', { sector: 'Energy' }, 20],
    ['access level', { accessLevel: 'organization' as const }, 1],
    ['one company', { symbol: 'C3' }, 1],
  ])('filtered by %s, every sort: bounded by the filter, not the table', async (_name, f, factor) => {
    for (const sort of SORTS) {
      const r = await reads(member, 'annual_predictions', async (tx) => listPredictions(tx, 'annual', f, { sort, fetch: LIMIT + 1, scopes: await scopesOf(tx) }));
      expect(r.reads.seqScans, sort).toBe(0);
      // A filter keeping 1 row in k costs about k rows per row returned, at any table size.
      expect(r.reads.rows, sort).toBeLessThanOrEqual(factor * 3 * (LIMIT + 1));
    }
  });

  it('a rare sector or year is read through its matches, not by walking the scope', async () => {
    for (const f of [{ sector: 'Shipping' }, { year: '1975', sector: 'Shipping' }]) {
      for (const sort of SORTS) {
        const r = await reads(member, 'annual_predictions', async (tx) => {
          const scopes = await scopesOf(tx);
          const total = await countPredictions(tx, 'annual', f, scopes);
          const rare = isRare(total.total, total.scopeTotal!, LIMIT + 1);
          if (rare) await usePlans(tx, 'custom');
          return { rare, total: total.total, rows: await listPredictions(tx, 'annual', f, { sort, fetch: LIMIT + 1, scopes, rare }) };
        });
        expect(r.result.rare, sort).toBe(true);
        expect(r.result.rows.length, sort).toBe(Math.min(LIMIT + 1, r.result.total));
        // The five companies' predictions (50 each), not the scope's tens of thousands.
        expect(r.reads.rows, sort).toBeLessThanOrEqual(5 * 50 + 10);
      }
    }
  });

  it('totals come from the rollups (exact) or stop counting at the cap', async () => {
    const exact = await reads(member, 'annual_predictions', async (tx) => countPredictions(tx, 'annual', { riskLevel: 'HIGH', sector: 'Energy' }, await scopesOf(tx)));
    expect(exact.result.total_relation).toBe('eq');
    expect(exact.reads.rows).toBe(0);
    const [raw] = await withUserTx(db.appSql, member, (tx) => tx<{ n: number }[]>`
      select count(*)::int as n from annual_predictions p join companies c on c.id = p.company_id where p.risk_level = 'HIGH' and c.sector = 'Energy'`);
    expect(exact.result.total).toBe(raw!.n);
    const capped = await reads(member, 'annual_predictions', async (tx) => countPredictions(tx, 'annual', { createdFrom: new Date(Date.now() - 400 * 86_400_000) }, await scopesOf(tx)));
    expect(capped.result).toEqual({ total: 1000, total_relation: 'gte' });
    expect(capped.reads.rows).toBeLessThanOrEqual(3 * 1001);
  });

  it('a tenant admin (ten organizations) and a super admin (every scope) page at the same cost', async () => {
    for (const sort of SORTS) {
      const ta = await reads(tenantAdmin, 'annual_predictions', async (tx) => listPredictions(tx, 'annual', {}, { sort, fetch: LIMIT + 1, scopes: await scopesOf(tx) }));
      expect(ta.result.length).toBe(LIMIT + 1);
      expect(ta.reads.rows, sort).toBeLessThanOrEqual(12 * (LIMIT + 1));
      const sa = await reads(superAdmin, 'annual_predictions', async (tx) => listPredictions(tx, 'annual', {}, { sort, fetch: LIMIT + 1, scopes: null }));
      expect(sa.result.length).toBe(LIMIT + 1);
      // One walk per risk level, merged: the page plus the first row of each walk.
      expect(sa.reads.rows, sort).toBeLessThanOrEqual(LIMIT + 1 + 4);
    }
  });

  it('a summary reads rollups; only its top-risk list touches predictions, a few pages of them', async () => {
    const from = new Date(Date.UTC(new Date().getUTCFullYear(), 0, 1));
    const to = new Date(Date.UTC(new Date().getUTCFullYear() + 1, 0, 1));
    const s = await reads(member, 'annual_predictions', async (tx) => rollupSummary(tx, 'annual', { from, to, grain: 'year', trendGrain: 'month' }, await scopesOf(tx)));
    expect(s.reads.rows).toBe(0);
    expect(s.result.total).toBeGreaterThan(1000);
    const t = await reads(member, 'annual_predictions', async (tx) => topRisk(tx, 'annual', { from, to }, await scopesOf(tx), { window: s.result.total, scope: s.result.scopeTotal }));
    expect(t.result.length).toBe(10);
    expect(t.reads.rows).toBeLessThanOrEqual(3 * 8 * 200);
  });

  it.each<PortfolioSort>(['name', '-symbol', '-annual_probability', 'annual_probability', '-updated'])('the portfolio sorted by %s reads O(page) companies', async (sort) => {
    const r = await reads(member, 'companies', async (tx) => listPortfolio(tx, {}, { sort, fetch: LIMIT + 1, scopes: await scopesOf(tx) }));
    expect(r.result.length).toBe(LIMIT + 1);
    expect(r.reads.seqScans).toBe(0);
    // The walk (<= a page per scope) plus the page's own rows joined back.
    expect(r.reads.rows).toBeLessThanOrEqual(4 * (LIMIT + 1));
    const c = await reads(member, 'companies', async (tx) => listCompanies(tx, {}, { sort: '-created_at', fetch: LIMIT + 1, scopes: await scopesOf(tx) }));
    expect(c.reads.rows).toBeLessThanOrEqual(3 * (LIMIT + 1));
  });

  it('a walk never plans parallel workers (their start-up would cost more than the page)', async () => {
    // auto_explain prints each statement's plan as a notice; it needs the owner (a superuser),
    // which plans the same statements the same way apart from the row-level security filters.
    const plans: string[] = [];
    const sql = postgres(db.adminUrl, { max: 1, onnotice: (n) => plans.push(String(n.message)) });
    try {
      // Estimates as a 10,000,000-row deployment's would be: parallel plans pay off on paper there.
      await sql`analyze annual_predictions`;
      await sql.begin(async (tx) => {
        await tx.unsafe(`load 'auto_explain'; set local auto_explain.log_min_duration = 0; set local auto_explain.log_nested_statements = on;
          set local client_min_messages = log; set local min_parallel_index_scan_size = 0; set local min_parallel_table_scan_size = 0;
          set local parallel_setup_cost = 0; set local parallel_tuple_cost = 0`);
        const t = tx as unknown as TxSql;
        await usePlans(t, 'walk');
        const scopes = [member, '00000000-0000-0000-0000-000000000000'];
        await listPredictions(t, 'annual', {}, { sort: '-created_at', fetch: LIMIT + 1, scopes });
        await listPortfolio(t, {}, { sort: '-annual_probability', fetch: LIMIT + 1, scopes });
      });
    } finally {
      await sql.end();
    }
    expect(plans.length).toBeGreaterThanOrEqual(2);
    expect(plans.filter((p) => /Gather/.test(p))).toEqual([]);
  });
});

