// Issue 14: concurrent creates share one statement (repositories/predictions.ts, migration 0045).
// A batch must give every create exactly the outcome it would have had alone: its own caller's
// row-level security and checks, its own audit row, conflicts within the batch, and one bad item
// failing alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorldApp, type WorldApp } from '../helpers/app.js';
import type { UserKey } from '../helpers/fixtures.js';
import * as repo from '../../src/repositories/predictions.js';

let world: WorldApp;
beforeAll(async () => {
  world = await createWorldApp(['omA1', 'omA1b', 'omB1', 'uA']);
});
afterAll(async () => {
  await world?.close();
});

const ANNUAL = { long_term_debt_to_total_capital: 35.2, total_debt_to_ebitda: 2.1, net_income_margin: 7.5, ebit_to_interest_expense: 6.3, return_on_assets: 4.9 };

describe('coalesced creates', () => {
  it('give each create, batched with others, the outcome it has alone', async () => {
    const before = { ...repo.createBatchStats(world.db.appSql, 'annual') };
    const c = world.w.companies;
    // [who, company, year, expected status]
    const cases: Array<[UserKey, string, string, number]> = [];
    for (let i = 0; i < 6; i++) {
      cases.push(['omA1', c.orgA1, String(1950 + i), 201]); // own organization's company
      cases.push(['omA1b', c.orgA1, String(1960 + i), 201]); // a colleague's: members add to it
      cases.push(['omB1', c.persB1, String(1950 + i), 201]); // own personal company
      cases.push(['omA1', c.orgB1, String(1970 + i), 404]); // another tenant's: not visible
      cases.push(['omB1', c.persA1, String(1970 + i), 404]); // another user's personal one
      cases.push(['omA1', c.system, String(1970 + i), 403]); // visible, but only a super admin adds
      cases.push(['uA', c.orgA1, String(1980 + i), 404]);
    }
    // The same period twice in one burst: exactly one is made, the other is told it exists.
    cases.push(['omB1', c.persB1, '1999', 0], ['omB1', c.persB1, '1999', 0]);
    const res = await Promise.all(cases.map(([who, company, year]) => world.api('POST', '/predictions/annual', who, { company_id: company, reporting_year: year, ...ANNUAL })));

    const after = repo.createBatchStats(world.db.appSql, 'annual')!;
    // The burst really was coalesced (more creates than statements, batches of several).
    expect(after.items - (before.items ?? 0)).toBe(cases.length);
    expect(after.batches - (before.batches ?? 0)).toBeLessThan(cases.length);
    expect(after.largest).toBeGreaterThan(1);

    cases.forEach(([who, , year, status], i) => {
      if (status) expect(res[i]!.statusCode, `${who} ${year}: ${res[i]!.body}`).toBe(status);
    });
    const dup = res.slice(-2).map((r) => r.statusCode).sort();
    expect(dup).toEqual([201, 409]);
    const made = res.slice(-2).find((r) => r.statusCode === 201)!.json().id as string;
    expect(res.slice(-2).find((r) => r.statusCode === 409)!.body).toContain(made);

    // Each prediction belongs to its own caller and has its own audit row by that caller.
    const ids = res.filter((r) => r.statusCode === 201).map((r) => r.json().id as string);
    expect(ids).toContain(made);
    const rows = await world.db.adminSql<{ id: string; created_by: string; audited_by: string | null }[]>`
      select p.id, p.created_by, (select a.user_id from audit_logs a where a.table_name = 'annual_predictions' and a.action = 'create' and a.row_id = p.id::text) as audited_by
      from annual_predictions p where p.id = any(${ids}::uuid[])`;
    expect(rows).toHaveLength(ids.length);
    const byId = new Map(rows.map((r) => [r.id, r]));
    cases.forEach(([who], i) => {
      if (res[i]!.statusCode !== 201) return;
      const r = byId.get(res[i]!.json().id)!;
      expect(r.created_by).toBe(world.w.users[who].id);
      expect(r.audited_by).toBe(world.w.users[who].id);
    });
    // Nothing was written for the refused ones.
    const [refused] = await world.db.adminSql<{ n: number }[]>`
      select count(*)::int as n from annual_predictions where company_id in (${c.orgB1}, ${c.persA1}, ${c.system}) and reporting_year between '1970' and '1989'`;
    expect(refused!.n).toBe(0);
  });

  it('fails the one bad create of a batch alone and makes the others', async () => {
    const c = world.w.companies;
    const u = world.w.users.omB1.id;
    const good = (year: string): repo.PredictionWrite => ({
      company_id: c.persB1,
      created_by: u,
      reporting_year: year,
      values: { ...ANNUAL, probability: 0.0123, logistic_probability: 0.012, step_probability: 0.013, risk_level: 'LOW', confidence: 0.8 },
      model_name: 'annual-scorecard',
      model_version: '1',
    });
    // Out of the table's CHECK range: the database refuses it, which fails its whole batch.
    const bad = { ...good('2091'), values: { ...good('2091').values, probability: 2 } };
    // The first four run alone (four slots); the rest wait and go together, the bad one among them.
    const writes = [good('2090'), good('2092'), good('2093'), good('2094'), good('2095'), bad, good('2096')];
    const before = repo.createBatchStats(world.db.appSql, 'annual')!.split;
    const out = await Promise.allSettled(writes.map((w) => repo.createForCompany(world.db.appSql, 'annual', w, null, '127.0.0.1')));
    expect(out.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(String((out[5] as PromiseRejectedResult).reason)).toMatch(/check constraint/);
    expect(repo.createBatchStats(world.db.appSql, 'annual')!.split).toBeGreaterThan(before);
    const years = await world.db.adminSql<{ reporting_year: string }[]>`
      select reporting_year from annual_predictions where company_id = ${c.persB1} and reporting_year between '2090' and '2096' order by 1`;
    expect(years.map((y) => y.reporting_year)).toEqual(['2090', '2092', '2093', '2094', '2095', '2096']);
  });
});
