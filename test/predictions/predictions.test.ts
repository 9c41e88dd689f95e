import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../helpers/db.js';
import { ALL_USERS, createWorldApp, type TestApp, type WorldApp } from '../helpers/app.js';
import { MODIFIABLE_COMPANIES, VISIBLE_COMPANIES, type CompanyKey, type UserKey, type World } from '../helpers/fixtures.js';

let world: WorldApp;
let db: TestDatabase;
let t: TestApp;
let w: World;
let tok: Record<UserKey, string>;
const ALL = ALL_USERS;

beforeAll(async () => {
  world = await createWorldApp(ALL);
  ({ db, t, w, tok } = world);
});
afterAll(async () => {
  await world.close();
});

const api = (method: string, url: string, who: UserKey, payload?: unknown) => world.api(method, url, who, payload);

const ANNUAL = { long_term_debt_to_total_capital: 35.2, total_debt_to_ebitda: 2.1, net_income_margin: 7.5, ebit_to_interest_expense: 6.3, return_on_assets: 4.9 };
const QUARTERLY = { current_ratio: 1.4, quick_ratio: 0.9, debt_to_equity: 0.8, inventory_turnover: 6.1, receivables_turnover: 8.2, working_capital_to_total_assets: 12 };

async function count(table: string): Promise<number> {
  const [r] = await db.adminSql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${table}`);
  return r!.n;
}

describe('the analyst workflow', () => {
  it('creates a company by symbol with its first prediction, and reads it back', async () => {
    const res = await api('POST', '/predictions/annual?explain=true', 'omA1', {
      company: { symbol: 'acme', name: 'Acme Corp', sector: 'Industrials' },
      reporting_year: '2024',
      ...ANNUAL,
    });
    expect(res.statusCode, res.body).toBe(201);
    const p = res.json();
    expect(p.company).toMatchObject({ symbol: 'ACME', name: 'Acme Corp', sector: 'Industrials' });
    expect(p).toMatchObject({ reporting_year: '2024', access_level: 'organization', organization_id: w.orgs.A1, created_by: w.users.omA1.id, ...ANNUAL });
    for (const f of ['probability', 'logistic_probability', 'step_probability', 'confidence']) {
      expect(typeof p[f], f).toBe('number');
      expect(p[f]).toBeGreaterThanOrEqual(0);
      expect(p[f]).toBeLessThanOrEqual(1);
    }
    expect(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']).toContain(p.risk_level);
    expect(p.model.name).toBeTruthy();
    expect(p.model.version).toBeTruthy();
    expect(p.explanation.top_drivers.length).toBeGreaterThan(0);
    expect(new Date(p.created_at).toISOString()).toBe(p.created_at);
    const [stored] = await db.adminSql<{ probability: number; model_version: string }[]>`select probability, model_version from annual_predictions where id = ${p.id}`;
    expect(stored!.probability).toBe(p.probability);
    expect(stored!.model_version).toBe(p.model.version);

    const again = await api('GET', `/predictions/annual/${p.id}`, 'omA1');
    expect(again.json()).toEqual(Object.fromEntries(Object.entries(p).filter(([k]) => k !== 'explanation')));
    // A second prediction for the same company (by id), another year; a quarterly one too.
    const next = await api('POST', '/predictions/annual', 'omA1', { company_id: p.company.id, reporting_year: 2023, ...ANNUAL, net_income_margin: -5 });
    expect(next.statusCode, next.body).toBe(201);
    expect(next.json().probability).toBeGreaterThan(p.probability);
    const q = await api('POST', '/predictions/quarterly', 'omA1', { company_id: p.company.id, reporting_year: '2024', reporting_quarter: 'q2', ...QUARTERLY });
    expect(q.statusCode, q.body).toBe(201);
    expect(q.json()).toMatchObject({ reporting_quarter: 'Q2' });
    for (const f of ['ensemble_probability', 'logistic_probability', 'gbm_probability', 'step_probability']) expect(q.json()[f]).toBeGreaterThanOrEqual(0);

    const list = await api('GET', `/predictions/annual?company_id=${p.company.id}&sort=reporting_year`, 'omA1');
    expect(list.json().items.map((x: { reporting_year: string }) => x.reporting_year)).toEqual(['2023', '2024']);
    expect(list.json().total).toBe(2);
    const bySymbol = await api('GET', '/predictions/annual?symbol=acme&reporting_year=2024', 'omA1b');
    expect(bySymbol.json().items.map((x: { id: string }) => x.id)).toEqual([p.id]);
    const byRisk = await api('GET', `/predictions/annual?risk_level=${p.risk_level}&sector=Industrials&access_level=organization`, 'oaA1');
    expect(byRisk.json().items.map((x: { id: string }) => x.id)).toContain(p.id);
    const future = await api('GET', `/predictions/annual?created_from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, 'omA1');
    expect(future.json().total).toBe(0);

    // Patching ratios re-runs the models.
    const patched = await api('PATCH', `/predictions/annual/${p.id}`, 'omA1', { net_income_margin: -30, return_on_assets: -15 });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json().probability).toBeGreaterThan(p.probability);
    expect(patched.json().long_term_debt_to_total_capital).toBe(35.2);
    const del = await api('DELETE', `/predictions/annual/${next.json().id}`, 'omA1');
    expect(del.statusCode).toBe(204);
    expect((await api('GET', `/predictions/annual/${next.json().id}`, 'omA1')).statusCode).toBe(404);
    // An annual id is not a quarterly prediction.
    expect((await api('GET', `/predictions/quarterly/${p.id}`, 'omA1')).statusCode).toBe(404);
  });

  it('a repeated create is 409 with the existing id; upsert replaces it and keeps the history', async () => {
    const body = { company: { symbol: 'DUP', name: 'Dup Inc' }, reporting_year: '2022', ...ANNUAL };
    const first = await api('POST', '/predictions/annual', 'omA2', body);
    expect(first.statusCode).toBe(201);
    const before = await count('annual_predictions');
    const dup = await api('POST', '/predictions/annual', 'omA2', { ...body, net_income_margin: -10 });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.details.existing_id).toBe(first.json().id);
    expect(await count('annual_predictions')).toBe(before);
    const up = await api('POST', '/predictions/annual?upsert=true', 'omA2', { ...body, net_income_margin: -10 });
    expect(up.statusCode, up.body).toBe(200);
    expect(up.json().id).toBe(first.json().id);
    expect(up.json().net_income_margin).toBe(-10);
    expect(await count('annual_predictions')).toBe(before);
    const [a] = await db.adminSql<{ action: string; before: { net_income_margin: number }; after: { values: { net_income_margin: number } } }[]>`
      select action, before, after from audit_logs where row_id = ${first.json().id} and action = 'upsert'`;
    expect(a!.before).toMatchObject({ values: { net_income_margin: 7.5 } });
    expect(a!.after.values.net_income_margin).toBe(-10);
    // The same symbol in another scope is another company: no conflict.
    const other = await api('POST', '/predictions/annual', 'omB1', body);
    expect(other.statusCode).toBe(201);
    expect(other.json().company.id).not.toBe(first.json().company.id);
  });

  it.each([
    [{ net_income_margin: 'NaN' }, 'net_income_margin'],
    [{ net_income_margin: 'abc' }, 'net_income_margin'],
    [{ total_debt_to_ebitda: 1e12 }, 'total_debt_to_ebitda'],
    [{ return_on_assets: -1e5 }, 'return_on_assets'],
    [{ return_on_assets: true }, 'return_on_assets'],
    [{ reporting_year: undefined }, 'reporting_year'],
    [{ reporting_year: '24' }, 'reporting_year'],
    [{ reporting_year: "2024'; drop table companies; --" }, 'reporting_year'],
    [{ mystery_ratio: 1 }, 'mystery_ratio'],
    [{ company: { symbol: 'BAD SYMBOL!', name: 'x' } }, 'company.symbol'],
    [{ company: { symbol: 'OK' } }, 'company.name'],
    [{ access_level: 'system' }, 'access_level'],
  ])('bad input %o is 4xx naming %s and writes nothing', async (change, field) => {
    const before = [await count('annual_predictions'), await count('companies'), await count('audit_logs')];
    const body: Record<string, unknown> = { company: { symbol: 'NEWCO', name: 'New Co' }, reporting_year: '2024', ...ANNUAL, ...change };
    for (const [k, v] of Object.entries(change)) if (v === undefined) delete body[k];
    const res = await api('POST', '/predictions/annual', 'omA1', body);
    expect([403, 422], res.body).toContain(res.statusCode);
    expect(res.json().error.message).toContain(field);
    expect([await count('annual_predictions'), await count('companies'), await count('audit_logs')]).toEqual(before);
  });

  it('a non-finite number never reaches the engine (JSON has none; the parser refuses them)', async () => {
    const res = await t.request({ method: 'POST', url: '/api/v1/predictions/annual', token: tok.omA1, headers: { 'content-type': 'application/json' },
      payload: '{"company":{"symbol":"X","name":"X"},"reporting_year":"2024","net_income_margin":NaN}' });
    expect(res.statusCode).toBe(400);
  });

  it('text PostgreSQL cannot store is refused with the path of the field that holds it, and nothing is written', async () => {
    const before = await count('annual_predictions');
    const cases: Array<[unknown, string, RegExp]> = [
      [{ company: { symbol: 'NULX', name: 'a\u0000b' }, reporting_year: '2024', ...ANNUAL }, 'company.name', /NUL/],
      [{ company: { symbol: 'SURX', name: 'x\uD800y' }, reporting_year: '2024', ...ANNUAL }, 'company.name', /lone surrogate/],
      [{ company: { symbol: 'KEYX', name: 'K', ['bad\u0000key']: 1 }, reporting_year: '2024', ...ANNUAL }, 'company', /NUL/],
      [{ reporting_year: '2024', ...ANNUAL, tags: ['ok', 'b\u0000'] }, 'tags.1', /NUL/],
    ];
    for (const [payload, field, message] of cases) {
      const res = await api('POST', '/predictions/annual', 'omA1', payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(422);
      const fields = res.json().error.details as Array<{ field: string; message: string }>;
      expect(fields).toEqual([expect.objectContaining({ field, message: expect.stringMatching(message) })]);
    }
    expect(await count('annual_predictions')).toBe(before);
  });
});

describe('access level × role', () => {
  const keys = Object.keys(VISIBLE_COMPANIES.super) as unknown as CompanyKey[];
  void keys;
  const companies: CompanyKey[] = ['persA1', 'persA1b', 'orgA1', 'orgA1b', 'orgA2', 'orgB1', 'persB1', 'system'];

  it.each(ALL)('%s reads, lists, updates and deletes exactly what the model allows', async (u) => {
    const listed = (await api('GET', '/predictions/annual?limit=100', u)).json().items.map((x: { id: string }) => x.id);
    for (const c of companies) {
      const id = w.annual[c];
      const visible = VISIBLE_COMPANIES[u].includes(c);
      const modifiable = MODIFIABLE_COMPANIES[u].includes(c);
      expect((await api('GET', `/predictions/annual/${id}`, u)).statusCode, `${u} GET ${c}`).toBe(visible ? 200 : 404);
      expect(listed.includes(id), `${u} lists ${c}`).toBe(visible);
      expect((await api('GET', `/companies/${w.companies[c]}`, u)).statusCode, `${u} GET company ${c}`).toBe(visible ? 200 : 404);
      // A patch that changes nothing material still goes through the access checks.
      const patch = await api('PATCH', `/predictions/annual/${id}`, u, { reporting_year: '2024' });
      expect(patch.statusCode, `${u} PATCH ${c}: ${patch.body}`).toBe(modifiable ? 200 : visible ? 403 : 404);
      const cpatch = await api('PATCH', `/companies/${w.companies[c]}`, u, { sector: 'Industrials' });
      expect(cpatch.statusCode, `${u} PATCH company ${c}`).toBe(modifiable ? 200 : visible ? 403 : 404);
      if (!modifiable) {
        expect((await api('DELETE', `/predictions/annual/${id}`, u)).statusCode, `${u} DELETE ${c}`).toBe(visible ? 403 : 404);
      }
    }
  });

  it('deletes by the owner and by the right admins succeed', async () => {
    const mk = async (who: UserKey, symbol: string) =>
      (await api('POST', '/predictions/annual', who, { company: { symbol, name: symbol }, reporting_year: '2020', ...ANNUAL })).json().id as string;
    const own = await mk('omA1', 'DEL1');
    expect((await api('DELETE', `/predictions/annual/${own}`, 'omA1')).statusCode).toBe(204);
    const byOrgAdmin = await mk('omA1', 'DEL2');
    expect((await api('DELETE', `/predictions/annual/${byOrgAdmin}`, 'omA1b')).statusCode).toBe(403);
    expect((await api('DELETE', `/predictions/annual/${byOrgAdmin}`, 'oaA1')).statusCode).toBe(204);
    const byTenant = await mk('omA2', 'DEL3');
    expect((await api('DELETE', `/predictions/annual/${byTenant}`, 'taB')).statusCode).toBe(404);
    expect((await api('DELETE', `/predictions/annual/${byTenant}`, 'taA')).statusCode).toBe(204);
  });
});

describe('companies', () => {
  it('create, list with paging, sector filter and full-text search, soft delete', async () => {
    const names = ['Northwind Traders', 'Contoso Pharmaceuticals', 'Fabrikam Steel Works', 'Wide World Importers', 'Tailspin Toys'];
    for (const [i, n] of names.entries()) {
      const res = await api('POST', '/companies', 'uA', { symbol: `c${i}.x`, name: n, sector: i % 2 ? 'Health Care' : 'Industrials', market_cap: 1e9 });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json().symbol).toBe(`C${i}.X`);
      expect(res.json().access_level).toBe('personal');
    }
    const dup = await api('POST', '/companies', 'uA', { symbol: 'C0.X', name: 'dup' });
    expect(dup.statusCode).toBe(409);
    const page1 = (await api('GET', '/companies?limit=2', 'uA')).json();
    const page2 = (await api('GET', '/companies?limit=2&offset=2', 'uA')).json();
    const all = (await api('GET', '/companies?limit=100', 'uA')).json();
    expect(page1.total).toBe(all.total);
    expect([...page1.items, ...page2.items].map((c: { id: string }) => c.id)).toEqual(all.items.slice(0, 4).map((c: { id: string }) => c.id));
    expect((await api('GET', '/companies?sector=Health%20Care', 'uA')).json().items.every((c: { sector: string }) => c.sector === 'Health Care')).toBe(true);
    const found = (await api('GET', '/companies?q=pharmaceutical', 'uA')).json().items;
    expect(found.map((c: { name: string }) => c.name)).toEqual(['Contoso Pharmaceuticals']);
    expect((await api('GET', '/companies?limit=101', 'uA')).statusCode).toBe(400);
    const id = all.items.find((c: { name: string }) => c.name === 'Tailspin Toys').id;
    const del = await api('DELETE', `/companies/${id}`, 'uA');
    expect(del.statusCode).toBe(200);
    expect(del.json().is_active).toBe(false);
    expect((await api('GET', '/companies?limit=100', 'uA')).json().items.some((c: { id: string }) => c.id === id)).toBe(false);
    const [still] = await db.adminSql`select id from companies where id = ${id}`;
    expect(still).toBeDefined();
    // A company with predictions keeps them when deactivated.
    const withPred = (await api('POST', '/predictions/annual', 'uA', { company: { symbol: 'KEEP', name: 'Keep' }, reporting_year: '2021', ...ANNUAL })).json();
    await api('DELETE', `/companies/${withPred.company.id}`, 'uA');
    expect((await api('GET', `/predictions/annual/${withPred.id}`, 'uA')).statusCode).toBe(200);
    expect((await api('POST', '/predictions/annual', 'uA', { company_id: withPred.company.id, reporting_year: '2022', ...ANNUAL })).statusCode).toBe(422);
  });
});
