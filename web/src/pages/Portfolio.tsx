import { useEffect, useState } from 'react';
import { ExportButtons } from '../components/ExportButtons';
import { api, withQuery, type Paged } from '../api';
import { Sparkline } from '../components/charts';
import { Empty, ErrorState, Loading, PageTitle, Pager, RiskBadge, useAsync, useCursorPages, useDebounced, TableWrap } from '../components/ui';
import { pct } from '../format';
import { Link } from '../router';
import { useAuth } from '../auth';
import { ScopeBadge } from '../scope';
import { RatingBadge } from '../rating';

interface Item {
  company: { id: string; symbol: string; name: string; sector: string | null; country: string | null; access_level: string; organization_id: string | null; created_by: string | null; market_cap: number | null };
  annual: { probability: number; risk_level: string; reporting_year: string } | null;
  quarterly: { probability: number; risk_level: string; reporting_year: string; reporting_quarter: string } | null;
  trend: { annual: Array<{ period: string; probability: number }>; quarterly: Array<{ period: string; probability: number }> };
}

const SORTS: Array<[string, string]> = [
  ['name', 'Name (A–Z)'],
  ['-name', 'Name (Z–A)'],
  ['symbol', 'Symbol'],
  ['-annual_probability', 'Annual PD (highest first)'],
  ['annual_probability', 'Annual PD (lowest first)'],
  ['-quarterly_probability', 'Quarterly PD (highest first)'],
  ['quarterly_probability', 'Quarterly PD (lowest first)'],
  ['-updated', 'Recently predicted'],
];
const LIMIT = 25;

export function Portfolio() {
  const { user } = useAuth();
  // Filters and the page live in the URL: Back returns to them, and a view can be bookmarked.
  const [initial] = useState(() => new URLSearchParams(location.search));
  const [q, setQ] = useState(initial.get('q') ?? '');
  const [sector, setSector] = useState(initial.get('sector') ?? '');
  const [sort, setSort] = useState(SORTS.some(([v]) => v === initial.get('sort')) ? initial.get('sort')! : 'name');
  const dq = useDebounced(q.trim(), 300);
  const sectors = useAsync(() => api.get<string[]>('/portfolio/sectors'), []);
  const { data, error, loading, reload, index, cursor, next, prev } = useCursorPages(
    (cursor) => api.get<Paged<Item>>('/portfolio', { q: dq || undefined, sector: sector || undefined, sort, limit: LIMIT, cursor }),
    [dq, sector, sort],
    initial.get('cursor') ?? undefined,
  );
  useEffect(() => {
    const url = withQuery('/portfolio', { q: dq || undefined, sector: sector || undefined, sort: sort === 'name' ? undefined : sort, cursor: index > 0 ? cursor : undefined });
    if (url !== location.pathname + location.search) history.replaceState(null, '', url);
  }, [dq, sector, sort, cursor, index]);

  return (
    <main id="main" className="page">
      <PageTitle sub="Companies you can see, with their latest annual and quarterly probability of default.">Portfolio</PageTitle>
      <form className="toolbar" role="search" onSubmit={(e) => e.preventDefault()} aria-label="Filter companies">
        <div className="field inline grow">
          <label htmlFor="p-q">Search</label>
          <input id="p-q" type="search" placeholder="Company name or symbol" value={q} onChange={(e) => setQ(e.target.value)} />
        </div>
        <div className="field inline">
          <label htmlFor="p-sector">Sector</label>
          <select id="p-sector" value={sector} onChange={(e) => setSector(e.target.value)}>
            <option value="">All sectors</option>
            {(sectors.data ?? []).map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </div>
        <div className="field inline">
          <label htmlFor="p-sort">Sort by</label>
          <select id="p-sort" value={sort} onChange={(e) => setSort(e.target.value)}>
            {SORTS.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </div>
      </form>
      {loading && !data && <Loading what="Loading companies" />}
      {error !== null && <ErrorState error={error} retry={reload} />}
      {data && data.total === 0 && (
        <Empty title={dq || sector ? 'No company matches' : 'No companies yet'}>
          {dq || sector ? (
            <p>Try another search or sector.</p>
          ) : (
            <p>
              <Link to="/predict">Make a first prediction</Link> or <Link to="/bulk">upload a file</Link>.
            </p>
          )}
        </Empty>
      )}
      {data && data.total > 0 && (
        <>
          <TableWrap label="Portfolio companies" busy={loading}>
            <table className="table" data-testid="portfolio-table">
              <caption className="sr-only">Companies with their latest probabilities of default</caption>
              <thead>
                <tr>
                  <th scope="col">Company</th>
                  <th scope="col" className="hide-sm">Sector</th>
                  <th scope="col" className="num">Annual PD</th>
                  <th scope="col" className="num">Quarterly PD</th>
                  <th scope="col" className="hide-sm">Trend</th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((it) => (
                  <tr key={it.company.id}>
                    <th scope="row">
                      <Link to={`/companies/${it.company.id}`}>
                        <span className="symbol">{it.company.symbol}</span> {it.company.name}
                      </Link>{' '}
                      <ScopeBadge s={it.company} user={user} />
                    </th>
                    <td className="hide-sm">{it.company.sector ?? '–'}</td>
                    <td className="num">
                      {it.annual ? (
                        <>
                          {pct(it.annual.probability)} <RatingBadge pd={it.annual.probability} /> <RiskBadge level={it.annual.risk_level} />
                          <div className="muted small">{it.annual.reporting_year}</div>
                        </>
                      ) : (
                        <span className="muted">none</span>
                      )}
                    </td>
                    <td className="num">
                      {it.quarterly ? (
                        <>
                          {pct(it.quarterly.probability)} <RatingBadge pd={it.quarterly.probability} /> <RiskBadge level={it.quarterly.risk_level} />
                          <div className="muted small">
                            {it.quarterly.reporting_year} {it.quarterly.reporting_quarter}
                          </div>
                        </>
                      ) : (
                        <span className="muted">none</span>
                      )}
                    </td>
                    <td className="hide-sm">
                      <Sparkline points={it.trend.annual.length >= 2 ? it.trend.annual : it.trend.quarterly} label={`${it.company.symbol} trend`} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          <Pager page={data} index={index} onPrev={prev} onNext={next} />
          <ExportButtons path="/exports/portfolio" query={{ q: dq || undefined, sector: sector || undefined }} what="the portfolio" />
        </>
      )}
    </main>
  );
}
