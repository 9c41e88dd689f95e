// One organization holding nearly every row (how a real tenant looks, and how bench/scale loads):
// a generic plan estimates each scope at rows / distinct scopes, i.e. "half the table", so a
// count that let the planner pick any index walked the whole table for the member's empty
// scopes (118 ms of a 1M-row portfolio page), and a portfolio page sorted by name walked the
// (name, id) index filtering on the scope (2.2 s at 10M rows). Every walk must use its scope's index.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withUserTx } from '../../src/db/tx.js';
import type { TxSql } from '../../src/db/pool.js';
import { countCompanies, listCompanies, type CompanySort } from '../../src/repositories/companies.js';
import { countPortfolio, listPortfolio, type PortfolioSort } from '../../src/repositories/portfolio.js';
import { countPredictions, listPredictions, type PredictionSort } from '../../src/repositories/predictions.js';
import { scopesOf, TOTAL_CAP, usePlans } from '../../src/repositories/keyset.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { loadOrganizationBook } from '../helpers/scale-data.js';

let db: TestDatabase;
let member: string;
const COMPANIES = 5_000;

beforeAll(async () => {
  db = await createTestDatabase();
  const a = db.adminSql;
  const [t] = await a<{ id: string }[]>`insert into tenants (name) values ('skew') returning id`;
  const [o] = await a<{ id: string }[]>`insert into organizations (tenant_id, name) values (${t!.id}, 'big org') returning id`;
  const [u] = await a<{ id: string }[]>`
    insert into users (tenant_id, organization_id, email, username, role, is_verified)
    values (${t!.id}, ${o!.id}, 'm@x.com', 'm', 'org_member', true) returning id`;
  member = u!.id;
  await loadOrganizationBook(a, { organizationId: o!.id, creatorId: member, predictions: COMPANIES * 10 });
  await a`analyze`;
}, 300_000);

afterAll(async () => {
  await db.drop();
});

/** Rows of `table` read by fn under the walk profile (generic plans), as the member. */
async function reads<T>(table: string, fn: (tx: TxSql, scopes: string[]) => Promise<T>): Promise<{ result: T; rows: number }> {
  return withUserTx(db.appSql, member, async (tx) => {
    await usePlans(tx, 'walk');
    const scopes = await scopesOf(tx);
    const counter = async () => {
      const [r] = await tx<{ rows: string }[]>`
        select coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0) as rows from pg_stat_xact_user_tables where relname = ${table}`;
      return Number(r!.rows);
    };
    const before = await counter();
    const result = await fn(tx, scopes!);
    return { result, rows: (await counter()) - before };
  });
}

describe('capped counts walk each scope, also on generic plans', () => {
  it('the member sees one organization of 5,000 companies, and has empty scopes of its own', async () => {
    const [r] = await withUserTx(db.appSql, member, (tx) => tx<{ n: number }[]>`select count(*)::int as n from companies`);
    expect(r!.n).toBe(COMPANIES);
    const scopes = await withUserTx(db.appSql, member, (tx) => scopesOf(tx));
    expect(scopes!.length).toBeGreaterThanOrEqual(3);
  });

  it('portfolio and company totals read at most the cap, never the organization', async () => {
    // Several rounds: the statement is prepared once and its generic plan reused.
    for (let i = 0; i < 3; i++) {
      const p = await reads('companies', (tx, scopes) => countPortfolio(tx, {}, scopes));
      expect(p.result).toEqual({ total: TOTAL_CAP, total_relation: 'gte' });
      expect(p.rows).toBeLessThanOrEqual(TOTAL_CAP + 10);
      const c = await reads('companies', (tx, scopes) => countCompanies(tx, {}, scopes));
      expect(c.result).toEqual({ total: TOTAL_CAP, total_relation: 'gte' });
      expect(c.rows).toBeLessThanOrEqual(TOTAL_CAP + 10);
    }
  });

  it('a prediction total outside the rollups (a creation window) reads at most the cap', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await reads('annual_predictions', (tx, scopes) => countPredictions(tx, 'annual', { createdFrom: new Date(Date.now() - 365 * 86_400_000) }, scopes));
      expect(r.result).toEqual({ total: TOTAL_CAP, total_relation: 'gte' });
      // One walk per (scope, risk level): each stops at the cap or at its end.
      expect(r.rows).toBeLessThanOrEqual(4 * (TOTAL_CAP + 1));
    }
  });
});

const PAGE = 51;

describe('pages walk each scope, also on generic plans', () => {
  it.each<PortfolioSort>(['name', '-name', 'symbol', '-symbol', '-annual_probability', 'annual_probability', '-updated'])('the portfolio by %s reads O(page) companies', async (sort) => {
    for (let i = 0; i < 3; i++) {
      const r = await reads('companies', (tx, scopes) => listPortfolio(tx, {}, { sort, fetch: PAGE, scopes }));
      expect(r.result.length).toBe(PAGE);
      // The walk (<= a page per scope) plus the page's own rows joined back.
      expect(r.rows, sort).toBeLessThanOrEqual(4 * PAGE);
    }
  });

  it.each<CompanySort>(['name', '-name', 'symbol', '-symbol', 'created_at', '-created_at'])('the company list by %s reads O(page) companies', async (sort) => {
    for (let i = 0; i < 3; i++) {
      const r = await reads('companies', (tx, scopes) => listCompanies(tx, {}, { sort, fetch: PAGE, scopes }));
      expect(r.result.length).toBe(PAGE);
      expect(r.rows, sort).toBeLessThanOrEqual(3 * PAGE);
    }
  });

  it.each<PredictionSort>(['-created_at', 'created_at', '-probability', 'probability', '-reporting_year', 'reporting_year'])('predictions by %s read O(page) rows', async (sort) => {
    for (let i = 0; i < 3; i++) {
      const r = await reads('annual_predictions', (tx, scopes) => listPredictions(tx, 'annual', {}, { sort, fetch: PAGE, scopes }));
      expect(r.result.length).toBe(PAGE);
      // One walk per (scope, risk level), each <= a page.
      expect(r.rows, sort).toBeLessThanOrEqual(3 * 4 * PAGE);
    }
  });
});
