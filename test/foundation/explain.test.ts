import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withUserTx } from '../../src/db/tx.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

let db: TestDatabase;
let member: string;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function nodes(p: PlanNode): PlanNode[] {
  return [p, ...(p.Plans ?? []).flatMap(nodes)];
}

/**
 * 1,000,000 annual predictions spread like a multi-tenant deployment: 50 organizations, 500
 * users, 2 % shared system rows, 10 % personal rows, the rest organization rows.
 */
beforeAll(async () => {
  db = await createTestDatabase();
  const a = db.adminSql;
  await a`insert into tenants (name) select 'tenant ' || g from generate_series(1, 5) g`;
  await a`insert into organizations (tenant_id, name) select (select id from tenants order by name limit 1 offset (g % 5)), 'org ' || g from generate_series(1, 50) g`;
  await a`insert into users (tenant_id, organization_id, email, username, role)
          select o.tenant_id, o.id, 'u' || g || '@x.com', 'u' || g, 'org_member'
          from generate_series(1, 500) g join lateral (select id, tenant_id from organizations order by name limit 1 offset (g % 50)) o on true`;
  await a`insert into companies (symbol, name, access_level, organization_id, created_by)
          select 'C' || g, 'Company ' || g,
                 case when g % 50 = 0 then 'system' when g % 10 = 1 then 'personal' else 'organization' end,
                 case when g % 50 = 0 or g % 10 = 1 then null else u.organization_id end, u.id
          from generate_series(1, 20000) g join lateral (select id, organization_id from users order by username limit 1 offset (g % 500)) u on true`;
  // Bulk load as owner with triggers off (the scope trigger would copy exactly these values).
  await a.begin(async (tx) => {
    await tx`set local session_replication_role = replica`;
    await tx`insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level, access_level, organization_id, created_at)
             select c.id, c.created_by, (1975 + y)::text, random() * 0.3, 'LOW', c.access_level, c.organization_id, now() - (random() * interval '800 days')
             from companies c cross join generate_series(0, 49) y`;
  });
  await a`analyze`;
  const [m] = await a<{ id: string }[]>`select id from users order by username limit 1`;
  member = m!.id;
}, 300_000);

afterAll(async () => {
  await db.drop();
});

describe('row-level security at scale', () => {
  it('has 1,000,000 predictions loaded', async () => {
    const [r] = await db.adminSql<{ n: number }[]>`select count(*)::int as n from annual_predictions`;
    expect(r!.n).toBe(1_000_000);
  });

  const POLICY_INDEXES = ['idx_annual_predictions_access_level', 'idx_annual_predictions_creator', 'idx_annual_predictions_org'];
  it.each([
    ['latest 50', 'select * from annual_predictions order by created_at desc limit 50', POLICY_INDEXES],
    ['count', 'select count(*) from annual_predictions', POLICY_INDEXES],
    // A selective filter of the query itself may drive the scan instead; still never sequential.
    ['one year', `select id, probability from annual_predictions where reporting_year = '2020' order by probability desc limit 50`,
      null],
  ])("a member's list query (%s) uses named indexes, never a sequential scan", async (_name, query, expectedIndexes) => {
    const plan = await withUserTx(db.appSql, member, async (tx) => {
      const [row] = await tx.unsafe<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }[]>(`explain (format json) ${query}`);
      return row!['QUERY PLAN'][0]!.Plan;
    });
    const all = nodes(plan);
    const onPredictions = all.filter((n) => n['Relation Name'] === 'annual_predictions' || n['Index Name']?.startsWith('idx_annual_predictions'));
    expect(onPredictions.some((n) => n['Node Type'] === 'Seq Scan'), JSON.stringify(plan)).toBe(false);
    const used = all.map((n) => n['Index Name']).filter(Boolean);
    if (expectedIndexes) expect(used, JSON.stringify(plan)).toEqual(expect.arrayContaining(expectedIndexes));
    else expect(used.some((i) => i?.startsWith('idx_annual_predictions_')), JSON.stringify(plan)).toBe(true);
    // And the answer is the member's rows only.
    const [count] = await withUserTx(db.appSql, member, (tx) => tx<{ n: number }[]>`select count(*)::int as n from annual_predictions`);
    expect(count!.n).toBeLessThan(100_000);
    expect(count!.n).toBeGreaterThan(20_000);
  });
});
