// The demo seed gives a new tenant a sample portfolio scored by the shipped models (issue 17:
// "a new tenant's dashboard is empty"): a few hundred companies over several years, in the demo
// organization's scope, ratios as the reference data draws them.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { engineOnce } from '../helpers/app.js';
import { DEMO_PORTFOLIO, seedDemo } from '../../src/services/seed.js';
import { withUserTx } from '../../src/db/tx.js';
import { checkRatiosPresent } from '../../src/services/prediction-compute.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('demo seed', () => {
  it('creates the demo tenant with a scored sample portfolio in its organization', async () => {
    const seeded = await seedDemo(db.adminSql, mkdtempSync(path.join(tmpdir(), 'accunode-seed-')), { engine: await engineOnce() });
    expect(seeded.seeded).toBe(true);
    const [org] = await db.adminSql<{ id: string }[]>`select id from organizations where name = 'Demo Analysts'`;
    const companies = await db.adminSql<{ n: number }[]>`select count(*)::int as n from companies where access_level = 'organization' and organization_id = ${org!.id}`;
    expect(companies[0]!.n).toBe(DEMO_PORTFOLIO.companies);
    const preds = await db.adminSql<Record<string, unknown>[]>`select * from annual_predictions where organization_id = ${org!.id}`;
    expect(preds).toHaveLength(DEMO_PORTFOLIO.companies * DEMO_PORTFOLIO.years.length);
    expect(new Set(preds.map((p) => p.reporting_year))).toEqual(new Set(DEMO_PORTFOLIO.years));
    // A realistic book: every risk level, the models' own outputs, the ratio minimum met.
    expect(new Set(preds.map((p) => p.risk_level))).toEqual(new Set(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']));
    const engine = await engineOnce();
    for (const p of preds.slice(0, 50)) {
      const ratios = { long_term_debt_to_total_capital: p.long_term_debt_to_total_capital, total_debt_to_ebitda: p.total_debt_to_ebitda, net_income_margin: p.net_income_margin, ebit_to_interest_expense: p.ebit_to_interest_expense, return_on_assets: p.return_on_assets } as Record<string, number | null>;
      expect(checkRatiosPresent('annual', ratios)).toEqual([]);
      expect(p.probability).toBe(engine.predictAnnual(ratios as never).probability);
      expect(p.model_version).toBe(engine.predictAnnual(ratios as never).model.version);
    }
    // Sectors spread, market caps set (the company pages show them).
    const sectors = await db.adminSql<{ n: number }[]>`select count(distinct sector)::int as n from companies where organization_id = ${org!.id}`;
    expect(sectors[0]!.n).toBeGreaterThanOrEqual(10);
    // The rollups the dashboard reads were kept by the triggers: the admin sees the whole book.
    const [admin] = await db.adminSql<{ id: string }[]>`select id from users where username = 'admin'`;
    const n = await withUserTx(db.appSql, admin!.id, async (tx) => (await tx<{ n: string }[]>`select coalesce(sum(n), 0) + (select coalesce(sum(n), 0) from prediction_rollup_deltas where kind = 'annual') as n from prediction_year_rollups where kind = 'annual'`)[0]!.n);
    expect(Number(n)).toBe(preds.length);
  });

  it('never seeds twice', async () => {
    expect((await seedDemo(db.adminSql, mkdtempSync(path.join(tmpdir(), 'accunode-seed-')), { engine: await engineOnce() })).seeded).toBe(false);
  });
});
