// Keyset paging through the API: every sort walks the whole list with no row lost or repeated
// while rows are inserted between pages; cursors are opaque and refused when altered or reused
// with another list, sort or filter; deep offsets point at the cursor; totals say what they are.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withUserTx } from '../../src/db/tx.js';
import { createWorldApp, type WorldApp } from '../helpers/app.js';

let wa: WorldApp;
const SORTS = ['-created_at', 'created_at', '-probability', 'probability', '-reporting_year', 'reporting_year'] as const;
const ORDER: Record<(typeof SORTS)[number], string> = {
  '-created_at': 'created_at desc, id desc',
  created_at: 'created_at asc, id asc',
  '-probability': 'pd_micros desc, id desc',
  probability: 'pd_micros asc, id asc',
  '-reporting_year': 'reporting_year desc, id desc',
  reporting_year: 'reporting_year asc, id asc',
};

beforeAll(async () => {
  wa = await createWorldApp(['omA1', 'taA', 'omB1', 'super']);
  const a = wa.db.adminSql;
  // 40 more predictions in organization A1 (with the triggers on, as the app writes them), with
  // ties on purpose: five share each creation time, probabilities repeat every seven.
  for (let c = 0; c < 8; c++) {
    const [co] = await a<{ id: string }[]>`
      insert into companies (symbol, name, sector, access_level, organization_id, created_by)
      values (${'PG' + c}, ${'Paging ' + c}, ${c % 2 ? 'Energy' : 'Utilities'}, 'organization', ${wa.w.orgs.A1}, ${wa.w.users.omA1.id}) returning id`;
    for (let y = 0; y < 5; y++) {
      const i = c * 5 + y;
      const p = 0.01 + (i % 7) * 0.02;
      await a`insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level, confidence, created_at)
              values (${co!.id}, ${wa.w.users.omA1.id}, ${String(2015 + y)}, ${p},
                      ${p < 0.02 ? 'LOW' : p < 0.05 ? 'MEDIUM' : p < 0.15 ? 'HIGH' : 'CRITICAL'}, 0.8,
                      timestamp '2026-03-01 10:00:00' + ${Math.floor(i / 5)} * interval '1 minute')`;
    }
  }
});
afterAll(async () => {
  await wa.close();
});

type Page = { items: Array<{ id: string }>; next_cursor: string | null; total: number; total_relation: string; limit: number };
const get = async (url: string, who: 'omA1' | 'taA' | 'omB1' | 'super' = 'omA1') => {
  const res = await wa.api('GET', url, who);
  return { status: res.statusCode, body: res.json() as Page & { error?: { code: string; message: string } } };
};

describe('keyset paging', () => {
  it.each(SORTS)('sorted by %s: every row once, in order, while rows are inserted between pages', async (sort) => {
    const expected = await withUserTx(wa.db.appSql, wa.w.users.omA1.id, (tx) =>
      tx.unsafe<{ id: string }[]>(`select id from annual_predictions order by ${ORDER[sort]}`));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await get(`/predictions/annual?sort=${sort}&limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      seen.push(...r.body.items.map((i) => i.id));
      cursor = r.body.next_cursor;
      // A new prediction between two pages (another user of the organization, new company).
      const made = await wa.api('POST', '/predictions/annual', 'omA1', {
        company: { symbol: `N${SORTS.indexOf(sort)}X${pages}`, name: `New ${pages}`, sector: 'Energy' },
        reporting_year: '2020', net_income_margin: 3 + pages, return_on_assets: 2, total_debt_to_ebitda: 2,
      });
      expect(made.statusCode, made.body).toBe(201);
      pages++;
    } while (cursor && pages < 200);
    expect(cursor).toBeNull();
    expect(new Set(seen).size).toBe(seen.length);
    const start = new Set(expected.map((e) => e.id));
    // Every row that existed at the start, in the order it had then.
    expect(seen.filter((id) => start.has(id))).toEqual(expected.map((e) => e.id));
  });

  it('refuses a cursor that was altered, or reused with another sort, filter or list (400)', async () => {
    const first = await get('/predictions/annual?sort=-probability&limit=3');
    const c = first.body.next_cursor!;
    const [body, mac] = c.split('.') as [string, string];
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    for (const bad of [flip(body, 5), `${body}.${flip(mac, 3)}`, `${body}x.${mac}`, 'not-a-cursor', `${c}.extra`, Buffer.from('{"v":[1,"x"]}').toString('base64url')]) {
      const r = await get(`/predictions/annual?sort=-probability&limit=3&cursor=${encodeURIComponent(bad)}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.error!.code).toBe('bad_request');
      expect(r.body.error!.message).toMatch(/^cursor: /);
    }
    expect((await get(`/predictions/annual?sort=probability&limit=3&cursor=${encodeURIComponent(c)}`)).status).toBe(400);
    expect((await get(`/predictions/annual?sort=-probability&risk_level=HIGH&limit=3&cursor=${encodeURIComponent(c)}`)).status).toBe(400);
    expect((await get(`/predictions/quarterly?sort=-probability&limit=3&cursor=${encodeURIComponent(c)}`)).status).toBe(400);
    expect((await get(`/companies?limit=3&cursor=${encodeURIComponent(c)}`)).status).toBe(400);
    // The page size may change between pages; the position is the same.
    const next = await get(`/predictions/annual?sort=-probability&limit=5&cursor=${encodeURIComponent(c)}`);
    expect(next.status).toBe(200);
    const direct = await get('/predictions/annual?sort=-probability&limit=8');
    expect(next.body.items.map((i) => i.id)).toEqual(direct.body.items.slice(3).map((i) => i.id));
  });

  it('serves shallow offsets and refuses deep ones with a pointer to the cursor', async () => {
    const byOffset = await get('/predictions/annual?sort=created_at&limit=5&offset=10');
    const byCursor = await get('/predictions/annual?sort=created_at&limit=10');
    const then = await get(`/predictions/annual?sort=created_at&limit=5&cursor=${encodeURIComponent(byCursor.body.next_cursor!)}`);
    expect(byOffset.body.items).toEqual(then.body.items);
    const deep = await get('/predictions/annual?offset=5000');
    expect(deep.status).toBe(400);
    expect(deep.body.error!.message).toMatch(/cursor/);
    expect((await get(`/predictions/annual?offset=5&cursor=${encodeURIComponent(byCursor.body.next_cursor!)}`)).status).toBe(400);
  });

  it('reports exact totals from the rollups, and capped counts as such', async () => {
    const all = await get('/predictions/annual?limit=1');
    const [{ n }] = await withUserTx(wa.db.appSql, wa.w.users.omA1.id, (tx) => tx<[{ n: number }]>`select count(*)::int as n from annual_predictions`);
    expect(all.body).toMatchObject({ total: n, total_relation: 'eq' });
    const energy = await get('/predictions/annual?limit=1&sector=Energy&risk_level=HIGH');
    const [{ e }] = await withUserTx(wa.db.appSql, wa.w.users.omA1.id, (tx) =>
      tx<[{ e: number }]>`select count(*)::int as e from annual_predictions p join companies c on c.id = p.company_id where c.sector = 'Energy' and p.risk_level = 'HIGH'`);
    expect(energy.body).toMatchObject({ total: e, total_relation: 'eq' });
    // A filter the rollups do not hold: counted, exactly while under the cap.
    const window = await get('/predictions/annual?limit=1&created_from=2026-03-01T10:02:00Z&created_to=2026-03-01T10:04:00Z');
    expect(window.body).toMatchObject({ total: 10, total_relation: 'eq' });
  });

  it('pages the other lists the same way: companies, portfolio, users, audit (jobs: test/jobs/routes.test.ts)', async () => {
    type Item = { id?: string; company?: { id: string } };
    const idOf = (i: unknown) => (i as Item).id ?? (i as Item).company!.id;
    const walk = async (base: string, who: 'omA1' | 'taA' = 'omA1') => {
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const r = await get(`${base}${base.includes('?') ? '&' : '?'}limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, who);
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        ids.push(...r.body.items.map(idOf));
        cursor = r.body.next_cursor;
      } while (cursor);
      return ids;
    };
    for (const [base, who] of [['/companies', 'omA1'], ['/companies?sort=name', 'omA1'], ['/portfolio?sort=-annual_probability', 'omA1'], ['/portfolio?sort=symbol', 'omA1'], ['/users', 'taA'], ['/audit', 'taA']] as const) {
      const ids = await walk(base, who);
      const all = await get(`${base}${base.includes('?') ? '&' : '?'}limit=100`, who);
      expect(ids.length, base).toBeGreaterThan(2);
      expect(ids.slice(0, 100), base).toEqual(all.body.items.map(idOf));
      expect(new Set(ids).size, base).toBe(ids.length);
    }
    // The audit log is for tenant and super admins; a member is refused, not shown an empty page.
    expect((await get('/audit', 'omA1')).status).toBe(403);
  });
});
