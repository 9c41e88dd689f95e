/**
 * POST/GET /companies/:id/defaults and GET /models/:kind/backtest against the real database:
 * role and scope checks, row-level security of company_default_events, plain 4xx on bad input.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withUserTx } from '../../src/db/tx.js';
import { createWorldApp, type WorldApp } from '../helpers/app.js';
import { labelledHistory } from '../../src/services/defaults.js';

let wa: WorldApp;
beforeAll(async () => {
  wa = await createWorldApp(['super', 'oaA1', 'omA1', 'omA1b', 'oaB1', 'taB', 'taA']);
}, 120_000);
afterAll(async () => {
  await wa?.close();
});

describe('recording defaults', () => {
  it('lets an admin of the company scope record one, once per date', async () => {
    const c = wa.w.companies.orgA1;
    const r1 = await wa.api('POST', `/companies/${c}/defaults`, 'oaA1', { date: '2025-06-01', source: 'rating agency notice' });
    expect(r1.statusCode).toBe(201);
    const e = r1.json();
    expect(e).toMatchObject({ company_id: c, default_date: '2025-06-01', source: 'rating agency notice', recorded_by: wa.w.users.oaA1.id });
    const r2 = await wa.api('POST', `/companies/${c}/defaults`, 'oaA1', { date: '2025-06-01', source: 'again' });
    expect(r2.statusCode).toBe(200);
    expect(r2.json().id).toBe(e.id);
    const [n] = await wa.db.adminSql<{ n: number }[]>`select count(*)::int as n from company_default_events where company_id = ${c}`;
    expect(n!.n).toBe(1);
    const [a] = await wa.db.adminSql<{ n: number }[]>`select count(*)::int as n from audit_logs where action = 'record_default' and row_id = ${e.id}`;
    expect(a!.n).toBe(1);
    // Members of the organization read it with the company.
    const list = await wa.api('GET', `/companies/${c}/defaults`, 'omA1');
    expect(list.statusCode).toBe(200);
    expect(list.json().map((x: { id: string }) => x.id)).toEqual([e.id]);
  });

  it('refuses a member who may not modify the company (403) and hides it from other tenants (404)', async () => {
    const c = wa.w.companies.orgA1b; // created by omA1b
    const member = await wa.api('POST', `/companies/${c}/defaults`, 'omA1', { date: '2025-01-10', source: 'court filing' });
    expect(member.statusCode).toBe(403);
    const other = await wa.api('POST', `/companies/${c}/defaults`, 'oaB1', { date: '2025-01-10', source: 'court filing' });
    expect(other.statusCode).toBe(404);
    expect((await wa.api('GET', `/companies/${c}/defaults`, 'taB')).statusCode).toBe(404);
    const [n] = await wa.db.adminSql<{ n: number }[]>`select count(*)::int as n from company_default_events where company_id = ${c}`;
    expect(n!.n).toBe(0);
  });

  it('answers bad input with a 400 naming the field and writes nothing', async () => {
    const c = wa.w.companies.orgA1;
    const cases: Array<[unknown, RegExp]> = [
      [{ date: '2025-13-01', source: 'x' }, /date/],
      [{ date: '01/06/2025', source: 'x' }, /date/],
      [{ date: '2999-01-01', source: 'x' }, /date.*future/],
      [{ date: '2025-02-01', source: '   ' }, /source/],
      [{ date: '2025-02-01' }, /source/],
    ];
    for (const [body, re] of cases) {
      const r = await wa.api('POST', `/companies/${c}/defaults`, 'oaA1', body);
      // Malformed shape: 400 from the schema; a well-formed but impossible value: 422.
      expect([400, 422], JSON.stringify(body)).toContain(r.statusCode);
      expect(JSON.stringify(r.json()), JSON.stringify(body)).toMatch(re);
    }
    const [n] = await wa.db.adminSql<{ n: number }[]>`select count(*)::int as n from company_default_events where company_id = ${c}`;
    expect(n!.n).toBe(1);
  });

  it('is enforced by row-level security, not only by the service', async () => {
    const c = wa.w.companies.orgA1;
    const seen = await withUserTx(wa.db.appSql, wa.w.users.taB.id, (tx) => tx`select id from company_default_events`);
    expect(seen).toHaveLength(0);
    await expect(
      withUserTx(wa.db.appSql, wa.w.users.oaB1.id, (tx) => tx`insert into company_default_events (company_id, default_date, source, recorded_by) values (${c}, '2024-01-01', 'x', ${wa.w.users.oaB1.id})`),
    ).rejects.toThrow(/row-level security/);
    // A member of the organization sees it but may not add one behind the service's back.
    expect(await withUserTx(wa.db.appSql, wa.w.users.omA1b.id, (tx) => tx`select id from company_default_events`)).toHaveLength(1);
    await expect(
      withUserTx(wa.db.appSql, wa.w.users.omA1b.id, (tx) => tx`insert into company_default_events (company_id, default_date, source, recorded_by) values (${c}, '2024-01-01', 'x', ${wa.w.users.omA1b.id})`),
    ).rejects.toThrow(/row-level security/);
  });
});

describe('backtest report', () => {
  it('reports per model version over what the caller can see', async () => {
    // The world's orgA1 annual prediction: made by the shipped model a year before its default.
    await wa.db.adminSql`update annual_predictions set model_name = 'accunode-reference-annual', model_version = '2.0.0', created_at = '2024-09-01', probability = 0.2 where id = ${wa.w.annual.orgA1}`;
    await wa.db.adminSql`update annual_predictions set model_name = 'accunode-reference-annual', model_version = '2.0.0', created_at = '2024-10-01', probability = 0.01 where id = ${wa.w.annual.orgA1b}`;
    const r = await wa.api('GET', '/models/annual/backtest?as_of=2026-06-30', 'oaA1');
    expect(r.statusCode).toBe(200);
    const v = r.json().versions.find((x: { model_version: string }) => x.model_version === '2.0.0');
    expect(v).toMatchObject({ predictions: 2, defaults: 1, auc: 1 });
    // Tenant B sees neither the default nor those predictions.
    const b = await wa.api('GET', '/models/annual/backtest?as_of=2026-06-30', 'taB');
    expect(b.json().versions.find((x: { model_version: string }) => x.model_version === '2.0.0')).toBeUndefined();
    // The same history as a labelled training set (train --from-database): the defaulted row 1,
    // the survivor 0; rows made this year are still open and left out.
    const h = await labelledHistory(wa.db.adminSql, 'annual', { asOf: new Date('2026-06-30T00:00:00Z') });
    expect(Array.from(h.ds.y).sort()).toEqual([0, 1]);
    expect(h.excluded).toBe(6);
    const onlyB = await labelledHistory(wa.db.adminSql, 'annual', { asOf: new Date('2026-06-30T00:00:00Z'), tenantId: wa.w.tenants.B });
    expect(onlyB.ds.y).toHaveLength(0);
    const bogus = await wa.api('GET', '/models/bogus/backtest', 'oaA1');
    expect(bogus.statusCode).toBe(422);
    expect(bogus.json().error.message).toMatch(/^kind:/);
    const day = await wa.api('GET', '/models/annual/backtest?as_of=yesterday', 'oaA1');
    expect(day.statusCode).toBe(422);
    expect(day.json().error.message).toMatch(/^as_of:/);
  });
});
