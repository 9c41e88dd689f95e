// The analysts' portfolio: visible companies with their latest predictions (row-level security
// decides what "visible" means; nothing here widens it).
import type { Sql } from '../db/pool.js';
import { withUserTx } from '../db/tx.js';
import type { Principal } from '../domain/principal.js';
import {
  countPortfolio, listPortfolio, portfolioPlans, portfolioSectors, PORTFOLIO_CURSOR_TYPES, PORTFOLIO_NULLABLE,
  type PortfolioFilter, type PortfolioRow, type PortfolioSort,
} from '../repositories/portfolio.js';
import { checkOffset, checkValues, pageOf, scopesOf, usePlans, type Cursors, type ListRequest, type Page } from '../repositories/keyset.js';

interface PortfolioItem {
  company: { id: string; symbol: string; name: string; sector: string | null; country: string | null; access_level: string; organization_id: string | null; created_by: string | null; market_cap: number | null };
  annual: { id: string; probability: number; risk_level: string; reporting_year: string; created_at: string } | null;
  quarterly: { id: string; probability: number; risk_level: string; reporting_year: string; reporting_quarter: string; created_at: string } | null;
  trend: { annual: Array<{ period: string; probability: number }>; quarterly: Array<{ period: string; probability: number }> };
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : '');

function presentPortfolioRow(r: PortfolioRow): PortfolioItem {
  return {
    company: { id: r.id, symbol: r.symbol, name: r.name, sector: r.sector, country: r.country, access_level: r.access_level, organization_id: r.organization_id, created_by: r.created_by, market_cap: r.market_cap === null ? null : Number(r.market_cap) },
    annual: r.annual_id
      ? { id: r.annual_id, probability: Number(r.annual_probability), risk_level: r.annual_risk_level!, reporting_year: r.annual_year!, created_at: iso(r.annual_at) }
      : null,
    quarterly: r.quarterly_id
      ? {
          id: r.quarterly_id,
          probability: Number(r.quarterly_probability),
          risk_level: r.quarterly_risk_level!,
          reporting_year: r.quarterly_year!,
          reporting_quarter: r.quarterly_quarter!,
          created_at: iso(r.quarterly_at),
        }
      : null,
    trend: { annual: r.annual_trend ?? [], quarterly: r.quarterly_trend ?? [] },
  };
}

export class PortfolioService {
  constructor(private readonly d: { sql: Sql; cursors: Cursors }) {}

  /** A keyset page of the portfolio (see repositories/portfolio.ts for the phases of a cursor). */
  async list(who: Principal, f: PortfolioFilter, q: ListRequest<PortfolioSort>): Promise<Page<PortfolioItem>> {
    const offset = checkOffset(q.offset, q.cursor);
    const scope = { list: 'portfolio', sort: q.sort, filters: f as Record<string, unknown> };
    const after = q.cursor ? checkValues(await this.d.cursors.decode(scope, q.cursor), PORTFOLIO_CURSOR_TYPES(q.sort), PORTFOLIO_NULLABLE) : undefined;
    const [rows, total] = await withUserTx(this.d.sql, who.userId, async (tx) => {
      const [, scopes] = await Promise.all([usePlans(tx, portfolioPlans(f)), who.role === 'super_admin' ? null : scopesOf(tx)]);
      return Promise.all([
        listPortfolio(tx, f, { sort: q.sort, fetch: q.limit + offset + 1, ...(after ? { after } : {}), scopes }),
        countPortfolio(tx, f, scopes),
      ]);
    });
    return pageOf(this.d.cursors, scope, rows, { limit: q.limit, offset }, (r) => r.sort_key, presentPortfolioRow, total);
  }

  async sectors(who: Principal): Promise<string[]> {
    return withUserTx(this.d.sql, who.userId, (tx) => portfolioSectors(tx));
  }
}
