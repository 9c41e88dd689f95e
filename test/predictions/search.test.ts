// Issue 17: prefix and partial search on symbol and name ("App", "For", "AA"), index-backed
// (pg_trgm and pattern-ops btrees, migration 0060), under RLS, with keyset paging intact.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorldApp, type WorldApp } from '../helpers/app.js';

let world: WorldApp;
beforeAll(async () => {
  world = await createWorldApp(['omA1', 'omB1']);
  const a = world.w.users.omA1.id;
  const b = world.w.users.omB1.id;
  await world.db.adminSql`
    insert into companies (symbol, name, access_level, organization_id, created_by) values
      ('AAPL', 'Apple Inc.', 'organization', ${world.w.orgs.A1}, ${a}),
      ('F', 'Ford Motor Company', 'organization', ${world.w.orgs.A1}, ${a}),
      ('AAL', 'American Airlines Group', 'organization', ${world.w.orgs.A1}, ${a}),
      ('SNAP', 'Snap-on Incorporated', 'organization', ${world.w.orgs.A1}, ${a}),
      ('APLB', 'Apple Hidden Holdings', 'organization', ${world.w.orgs.B1}, ${b})`;
});
afterAll(async () => {
  await world?.close();
});

const symbols = async (q: string, who: 'omA1' | 'omB1' = 'omA1', extra = '') => {
  const r = await world.api('GET', `/companies?q=${encodeURIComponent(q)}&sort=symbol${extra}`, who);
  expect(r.statusCode, r.body).toBe(200);
  return r.json() as { items: Array<{ symbol: string }>; next_cursor: string | null };
};

describe('company search', () => {
  it('finds by name prefix and part of a word, and by symbol prefix', async () => {
    expect((await symbols('App')).items.map((c) => c.symbol)).toEqual(['AAPL']);
    expect((await symbols('app')).items.map((c) => c.symbol)).toEqual(['AAPL']);
    expect((await symbols('For')).items.map((c) => c.symbol)).toEqual(['F']);
    expect((await symbols('AA')).items.map((c) => c.symbol)).toEqual(['AAL', 'AAPL']);
    expect((await symbols('pple')).items.map((c) => c.symbol)).toEqual(['AAPL']);
    expect((await symbols('airl')).items.map((c) => c.symbol)).toEqual(['AAL']);
    // Whole words still match through the full-text index, and LIKE's wildcards are plain text.
    expect((await symbols('motor company')).items.map((c) => c.symbol)).toEqual(['F']);
    expect((await symbols('%')).items).toEqual([]);
    expect((await symbols('_')).items).toEqual([]);
    expect((await symbols('snap-on')).items.map((c) => c.symbol)).toEqual(['SNAP']);
  });

  it('never shows another tenant\'s companies', async () => {
    expect((await symbols('Apple')).items.map((c) => c.symbol)).toEqual(['AAPL']);
    expect((await symbols('Apple', 'omB1')).items.map((c) => c.symbol)).toEqual(['APLB']);
  });

  it('pages by keyset through the matches', async () => {
    // "a": symbols AAL, AAPL by prefix; names starting with "a" (American Airlines, Apple).
    const first = await symbols('a', 'omA1', '&limit=1');
    expect(first.items.map((c) => c.symbol)).toEqual(['AAL']);
    expect(first.next_cursor).toBeTruthy();
    const r = await world.api('GET', `/companies?q=a&sort=symbol&limit=1&cursor=${encodeURIComponent(first.next_cursor!)}`, 'omA1');
    expect(r.json().items.map((c: { symbol: string }) => c.symbol)).toEqual(['AAPL']);
    expect(r.json().next_cursor).toBeNull();
  });

  it('the portfolio search finds the same', async () => {
    const r = await world.api('GET', '/portfolio?q=For', 'omA1');
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().items.map((i: { company: { symbol: string } }) => i.company.symbol)).toEqual(['F']);
  });

  it('is an index lookup, not a scan of every company', async () => {
    // Many companies, so a scan would look expensive to the planner too.
    // (Loaded without triggers, as the scale benchmarks load: only the indexes matter here.)
    await world.db.adminSql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`
        insert into companies (symbol, name, access_level, organization_id, created_by)
        select 'Z' || g, 'Filler Company ' || g, 'organization', ${world.w.orgs.B1}, ${world.w.users.omB1.id} from generate_series(1, 120000) g`;
    });
    await world.db.adminSql`analyze companies`;
    const plan = async (where: string) =>
      (await world.db.adminSql.unsafe<{ 'QUERY PLAN': string }[]>(`explain select id from companies c where ${where}`)).map((r) => r['QUERY PLAN']).join('\n');
    // The statement app_company_matches runs: a BitmapOr of the three indexes.
    const combined = await plan(`(to_tsvector('english', c.name) @@ websearch_to_tsquery('english', 'pple') or c.symbol like 'PPLE%' or lower(c.name) like '%pple%')`);
    expect(combined).toMatch(/BitmapOr/);
    expect(combined).not.toMatch(/Seq Scan/);
    expect(combined).toMatch(/idx_companies_name_trgm/);
    expect(await plan(`c.symbol like 'AA%'`)).toMatch(/idx_companies_symbol_prefix/);
    expect(await plan(`lower(c.name) like 'ap%'`)).toMatch(/idx_companies_name_prefix/);
    const [u] = await world.db.adminSql<{ n: number }[]>`select count(*)::int as n from companies`;
    expect(u!.n).toBeGreaterThan(120000);
    expect((await symbols('Fill', 'omA1')).items).toEqual([]);
    expect((await symbols('Filler Company 1999', 'omB1')).items.map((c) => c.symbol)).toContain('Z1999');
  });
});
