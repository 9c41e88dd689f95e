// Issue 17, company identity: a symbol resolves to the company the caller already sees and may
// add predictions to; a second same-symbol company takes an explicit choice; a symbol's page shows
// every visible company and prediction; merge and delete-by-mistake, per role, under RLS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_USERS, createWorldApp, type WorldApp } from '../helpers/app.js';
import type { UserKey } from '../helpers/fixtures.js';

let world: WorldApp;
beforeAll(async () => {
  world = await createWorldApp(ALL_USERS);
});
afterAll(async () => {
  await world?.close();
});

const ANNUAL = { long_term_debt_to_total_capital: 35.2, total_debt_to_ebitda: 2.1, net_income_margin: 7.5, ebit_to_interest_expense: 6.3, return_on_assets: 4.9 };
const api = (m: string, u: string, who: UserKey, body?: unknown) => world.api(m, u, who, body);
const predict = (who: UserKey, symbol: string, year: string, extra: Record<string, unknown> = {}) =>
  api('POST', '/predictions/annual', who, { company: { symbol, name: `${symbol} Corp` }, reporting_year: year, ...ANNUAL, ...extra });

async function company(symbol: string, level: 'personal' | 'organization' | 'system', creator: UserKey, org: 'A1' | 'A2' | 'B1' | null = null): Promise<string> {
  const [c] = await world.db.adminSql<{ id: string }[]>`
    insert into companies (symbol, name, sector, access_level, organization_id, created_by)
    values (${symbol}, ${symbol + ' Inc'}, 'Information Technology', ${level}, ${org ? world.w.orgs[org] : null}, ${world.w.users[creator].id}) returning id`;
  return c!.id;
}

async function companiesOf(symbol: string) {
  return world.db.adminSql<{ id: string; access_level: string; organization_id: string | null; created_by: string }[]>`
    select id, access_level, organization_id, created_by from companies where symbol = ${symbol} order by created_at`;
}

describe('a symbol resolves to the company the caller already sees', () => {
  it('the demo admin predicting a seeded system company adds to it, no private copy', async () => {
    const sys = await company('AAPL', 'system', 'super');
    const res = await predict('super', 'AAPL', '2024');
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().company.id).toBe(sys);
    expect(await companiesOf('AAPL')).toHaveLength(1);
  });

  it('a member who cannot add to the visible company is asked to choose; new_company creates one in their scope', async () => {
    const sys = await company('FORD', 'system', 'super');
    const res = await predict('omA1', 'FORD', '2024');
    expect(res.statusCode).toBe(409);
    const e = res.json().error;
    expect(e.message).toBe('FORD already exists (visible to everyone). Add the prediction to that company by its id, or ask for a separate FORD visible to its organization with new_company: true.');
    expect(e.details).toMatchObject({ reason: 'company_choice_required', new_company_scope: 'organization', candidates: [{ id: sys, access_level: 'system', can_add_predictions: false }] });
    expect(await companiesOf('FORD')).toHaveLength(1);
    const made = await predict('omA1', 'FORD', '2024', { new_company: true });
    expect(made.statusCode, made.body).toBe(201);
    expect(made.json()).toMatchObject({ access_level: 'organization', organization_id: world.w.orgs.A1 });
    // Next time the member's own FORD is the one they may add to: no question, no third copy.
    const again = await predict('omA1b', 'FORD', '2023');
    expect(again.statusCode, again.body).toBe(201);
    expect(again.json().company.id).toBe(made.json().company.id);
    expect(await companiesOf('FORD')).toHaveLength(2);
  });

  it('a member adds to the organization company another member created; a narrower scope takes new_company', async () => {
    const shared = await company('SHRD', 'organization', 'omA1', 'A1');
    const res = await predict('omA1b', 'SHRD', '2024');
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().company.id).toBe(shared);
    const personal = await predict('omA1b', 'SHRD', '2023', { access_level: 'personal' });
    expect(personal.statusCode).toBe(409);
    expect(personal.json().error.details.candidates.map((c: { id: string }) => c.id)).toEqual([shared]);
    const mine = await predict('omA1b', 'SHRD', '2023', { access_level: 'personal', new_company: true });
    expect(mine.statusCode, mine.body).toBe(201);
    expect(mine.json().access_level).toBe('personal');
    // An explicit scope that already has the symbol resolves there, no choice needed.
    const again = await predict('omA1b', 'SHRD', '2022', { access_level: 'personal' });
    expect(again.statusCode).toBe(201);
    expect(again.json().company.id).toBe(mine.json().company.id);
  });

  it('what RLS hides plays no part: another organization or tenant creates its own silently', async () => {
    const a2 = await predict('omA2', 'SHRD', '2024');
    expect(a2.statusCode, a2.body).toBe(201);
    expect(a2.json().organization_id).toBe(world.w.orgs.A2);
    const b1 = await predict('omB1', 'SHRD', '2024');
    expect(b1.statusCode).toBe(201);
    expect(b1.json().organization_id).toBe(world.w.orgs.B1);
  });
});

describe("a symbol's page", () => {
  it('lists every visible company with the symbol, marked with its scope, and their predictions; never more than RLS shows', async () => {
    const view = async (who: UserKey) => {
      const r = await api('GET', '/companies/symbol/shrd', who);
      expect(r.statusCode, r.body).toBe(200);
      return r.json() as { symbol: string; companies: Array<{ id: string; access_level: string; organization_id: string | null; can_add_predictions: boolean }>; annual: Array<{ company: { id: string }; access_level: string; reporting_year: string }> };
    };
    const b = await view('omA1b');
    expect(b.symbol).toBe('SHRD');
    expect(b.companies.map((c) => c.access_level)).toEqual(['personal', 'organization']);
    expect(b.companies.every((c) => c.can_add_predictions)).toBe(true);
    expect(b.annual.map((p) => `${p.access_level} ${p.reporting_year}`).sort()).toEqual(['organization 2024', 'personal 2022', 'personal 2023']);
    // omA1 does not see omA1b's personal SHRD nor its predictions.
    const a = await view('omA1');
    expect(a.companies.map((c) => c.access_level)).toEqual(['organization']);
    expect(a.annual.map((p) => p.reporting_year)).toEqual(['2024']);
    // The tenant admin sees both organizations' companies of its tenant, none of tenant B's.
    const ta = await view('taA');
    expect(ta.companies.map((c) => c.organization_id).sort()).toEqual([world.w.orgs.A1, world.w.orgs.A2].sort());
    const u = await view('uA');
    expect(u.companies).toEqual([]);
    expect(u.annual).toEqual([]);
  });
});

describe('merge', () => {
  it('moves the predictions (they take the target scope), deletes the source, and the audit log keeps both companies', async () => {
    const [mine] = (await companiesOf('SHRD')).filter((c) => c.access_level === 'personal');
    const [shared] = (await companiesOf('SHRD')).filter((c) => c.access_level === 'organization' && c.organization_id === world.w.orgs.A1);
    const r = await api('POST', `/companies/${mine!.id}/merge`, 'omA1b', { into: shared!.id });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().moved).toEqual({ annual: 2, quarterly: 0 });
    expect((await companiesOf('SHRD')).map((c) => c.id)).not.toContain(mine!.id);
    const moved = await world.db.adminSql<{ access_level: string; organization_id: string }[]>`select access_level, organization_id from annual_predictions where company_id = ${shared!.id}`;
    expect(moved).toHaveLength(3);
    expect(moved.every((m) => m.access_level === 'organization' && m.organization_id === world.w.orgs.A1)).toBe(true);
    // Now omA1 (same organization) sees them on the symbol page.
    const a = await api('GET', '/companies/symbol/SHRD', 'omA1');
    expect(a.json().annual.map((p: { reporting_year: string }) => p.reporting_year).sort()).toEqual(['2022', '2023', '2024']);
    const logs = await world.db.adminSql<{ action: string; row_id: string; before: { merged?: { id: string }; into?: { id: string }; id?: string } }[]>`
      select action, row_id, before from audit_logs where table_name = 'companies' and action in ('merge', 'delete') and (row_id = ${mine!.id} or row_id = ${shared!.id}) order by id`;
    expect(logs.map((l) => l.action)).toEqual(['merge', 'delete']);
    expect(logs[0]!.before.merged!.id).toBe(mine!.id);
    expect(logs[0]!.before.into!.id).toBe(shared!.id);
    expect(logs[1]!.before.id).toBe(mine!.id);
    // company_latest (the portfolio's rollup) follows: the source is gone, the target's latest is 2024.
    const latest = await world.db.adminSql<{ company_id: string; annual_year: string }[]>`select company_id, annual_year from company_latest where company_id in (${mine!.id}, ${shared!.id})`;
    expect(latest).toEqual([{ company_id: shared!.id, annual_year: '2024' }]);
  });

  it('refuses overlapping periods, writing nothing', async () => {
    const x = await company('OVLX', 'organization', 'omA1', 'A1');
    const y = await company('OVLY', 'organization', 'omA1', 'A1');
    for (const id of [x, y]) expect((await api('POST', '/predictions/annual', 'omA1', { company_id: id, reporting_year: '2024', ...ANNUAL })).statusCode).toBe(201);
    expect((await api('POST', '/predictions/annual', 'omA1', { company_id: x, reporting_year: '2023', ...ANNUAL })).statusCode).toBe(201);
    const r = await api('POST', `/companies/${x}/merge`, 'omA1', { into: y });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.message).toBe('Both companies have predictions for annual 2024. Delete or keep one of each first, then merge.');
    const counts = await world.db.adminSql<{ company_id: string; n: number }[]>`select company_id, count(*)::int as n from annual_predictions where company_id in (${x}, ${y}) group by 1 order by 2`;
    expect(counts.map((c) => c.n)).toEqual([1, 2]);
  });

  it('per role: only who may change the source and add to the target merges; RLS hides the rest', async () => {
    const src = await company('MSRC', 'organization', 'omA1', 'A1');
    const dst = await company('MDST', 'organization', 'omA1b', 'A1');
    // omA1b (a member, not creator of the source) may add to dst but not merge src away.
    expect((await api('POST', `/companies/${src}/merge`, 'omA1b', { into: dst })).statusCode).toBe(403);
    // Other organization, other tenant, a user without one: the source is not even visible.
    for (const who of ['omA2', 'omB1', 'taB', 'uA'] as const) expect((await api('POST', `/companies/${src}/merge`, who, { into: dst })).statusCode, who).toBe(404);
    // A personal company of omA1 cannot go into the system company (omA1 cannot add to it).
    const sys = await company('MSYS', 'system', 'super');
    const pers = await company('MPER', 'personal', 'omA1');
    expect((await api('POST', `/companies/${pers}/merge`, 'omA1', { into: sys })).statusCode).toBe(403);
    // The creator merges: fine even though the target is another member's (predictions are shared work).
    expect((await api('POST', '/predictions/annual', 'omA1', { company_id: src, reporting_year: '2020', ...ANNUAL })).statusCode).toBe(201);
    const ok = await api('POST', `/companies/${src}/merge`, 'omA1', { into: dst });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json().moved.annual).toBe(1);
  });

  it("a member cannot move other members' predictions off a company; an admin of the scope can", async () => {
    const src = await company('OTHS', 'organization', 'omA1', 'A1');
    const dst = await company('OTHD', 'organization', 'omA1', 'A1');
    expect((await api('POST', '/predictions/annual', 'omA1b', { company_id: src, reporting_year: '2021', ...ANNUAL })).statusCode).toBe(201);
    const r = await api('POST', `/companies/${src}/merge`, 'omA1', { into: dst });
    expect(r.statusCode).toBe(403);
    expect(r.json().error.message).toMatch(/made by others/);
    expect((await world.db.adminSql`select 1 from annual_predictions where company_id = ${src}`).length).toBe(1);
    for (const admin of ['oaA1'] as const) {
      const ok = await api('POST', `/companies/${src}/merge`, admin, { into: dst });
      expect(ok.statusCode, ok.body).toBe(200);
    }
    expect((await world.db.adminSql`select 1 from companies where id = ${src}`).length).toBe(0);
  });
});

describe('delete a mistake', () => {
  it('purge deletes the company and its predictions, each kept in the audit log; others cannot', async () => {
    const id = await company('OOPS', 'personal', 'omA1');
    const p = await api('POST', '/predictions/annual', 'omA1', { company_id: id, reporting_year: '2024', ...ANNUAL });
    expect(p.statusCode).toBe(201);
    for (const who of ['omA1b', 'taA', 'uA'] as const) expect((await api('DELETE', `/companies/${id}?purge=true`, who)).statusCode, who).toBe(404);
    const r = await api('DELETE', `/companies/${id}?purge=true`, 'omA1');
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toEqual({ deleted: { annual: 1, quarterly: 0 } });
    expect((await world.db.adminSql`select 1 from companies where id = ${id}`).length).toBe(0);
    const logs = await world.db.adminSql<{ table_name: string }[]>`select table_name from audit_logs where action = 'delete' and row_id in (${id}, ${p.json().id}) order by id`;
    expect(logs.map((l) => l.table_name)).toEqual(['annual_predictions', 'companies']);
    expect((await api('GET', `/predictions/annual/${p.json().id}`, 'omA1')).statusCode).toBe(404);
  });

  it('an organization company: the member who made it cannot purge others\u2019 predictions; the org admin can', async () => {
    const id = await company('OOPS2', 'organization', 'omA1', 'A1');
    expect((await api('POST', '/predictions/annual', 'omA1b', { company_id: id, reporting_year: '2024', ...ANNUAL })).statusCode).toBe(201);
    expect((await api('DELETE', `/companies/${id}?purge=true`, 'omA1')).statusCode).toBe(403);
    expect((await world.db.adminSql`select 1 from annual_predictions where company_id = ${id}`).length).toBe(1);
    expect((await api('DELETE', `/companies/${id}?purge=true`, 'omA1b')).statusCode).toBe(403);
    expect((await api('DELETE', `/companies/${id}?purge=true`, 'oaA1')).statusCode).toBe(200);
  });

  it('without purge, DELETE still only deactivates', async () => {
    const id = await company('KEEP', 'personal', 'omA1');
    const r = await api('DELETE', `/companies/${id}`, 'omA1');
    expect(r.statusCode).toBe(200);
    expect(r.json().is_active).toBe(false);
  });
});
