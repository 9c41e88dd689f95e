// Every company with one symbol that the user can see, and all their predictions, each marked
// with its scope (issue 17: "which AAPL is which").
import { api, finalProbability, type Prediction } from '../api';
import { useAuth } from '../auth';
import { Card, Empty, ErrorState, Loading, PageTitle, RiskBadge, useAsync, TableWrap } from '../components/ui';
import { money, pct } from '../format';
import { Link } from '../router';
import { ScopeBadge } from '../scope';
import { RatingBadge } from '../rating';

export interface SymbolCompany {
  id: string;
  symbol: string;
  name: string;
  sector: string | null;
  market_cap: number | null;
  access_level: string;
  organization_id: string | null;
  created_by: string | null;
  is_active: boolean;
  can_add_predictions: boolean;
}

export interface SymbolView {
  symbol: string;
  companies: SymbolCompany[];
  annual: Prediction[];
  quarterly: Prediction[];
}

const period = (p: Prediction) => (p.reporting_quarter ? `${p.reporting_year} ${p.reporting_quarter}` : p.reporting_year);

export function SymbolPage({ symbol }: { symbol: string }) {
  const { user } = useAuth();
  const view = useAsync(() => api.get<SymbolView>(`/companies/symbol/${encodeURIComponent(symbol)}`), [symbol]);
  const v = view.data;
  const byId = new Map((v?.companies ?? []).map((c) => [c.id, c]));
  const rows = v ? [...v.annual.map((p) => ({ p, kind: 'Annual' })), ...v.quarterly.map((p) => ({ p, kind: 'Quarterly' }))] : [];
  return (
    <main id="main" className="page">
      <PageTitle sub="Every company with this symbol that you can see, and all their predictions, each with who can see it.">{symbol.toUpperCase()} in every scope</PageTitle>
      {view.loading && !v && <Loading what="Loading" />}
      {view.error !== null && <ErrorState error={view.error} retry={view.reload} />}
      {v && v.companies.length === 0 && <Empty title={`No company with symbol ${v.symbol} is visible to you`} />}
      {v && v.companies.length > 0 && (
        <>
          <Card title="Companies" id="s-companies">
            <TableWrap label="Companies with this symbol">
              <table className="table compact" data-testid="symbol-companies">
                <caption className="sr-only">Companies with symbol {v.symbol}</caption>
                <thead>
                  <tr>
                    <th scope="col">Company</th>
                    <th scope="col">Visible to</th>
                    <th scope="col" className="hide-sm">Sector</th>
                    <th scope="col" className="num hide-sm">Market cap</th>
                    <th scope="col">You can add predictions</th>
                  </tr>
                </thead>
                <tbody>
                  {v.companies.map((c) => (
                    <tr key={c.id}>
                      <th scope="row">
                        <Link to={`/companies/${c.id}`}>
                          <span className="symbol">{c.symbol}</span> {c.name}
                        </Link>
                        {!c.is_active && <span className="muted small"> (deactivated)</span>}
                      </th>
                      <td>
                        <ScopeBadge s={c} user={user} />
                      </td>
                      <td className="hide-sm">{c.sector ?? '–'}</td>
                      <td className="num hide-sm">{money(c.market_cap)}</td>
                      <td>{c.can_add_predictions ? 'yes' : 'no'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          </Card>
          <Card title="Predictions across scopes" id="s-predictions">
            {rows.length === 0 ? (
              <Empty title="No predictions yet" />
            ) : (
              <TableWrap label="Predictions across scopes">
                <table className="table compact" data-testid="symbol-predictions">
                  <caption className="sr-only">Predictions of {v.symbol} in every scope you can see</caption>
                  <thead>
                    <tr>
                      <th scope="col">Period</th>
                      <th scope="col">Model</th>
                      <th scope="col" className="num">PD</th>
                      <th scope="col">Risk</th>
                      <th scope="col">Visible to</th>
                      <th scope="col" className="hide-sm">Company</th>
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map(({ p, kind }) => (
                      <tr key={p.id}>
                        <th scope="row">{period(p)}</th>
                        <td>{kind}</td>
                        <td className="num">
                          {pct(finalProbability(p))} <RatingBadge pd={finalProbability(p)} />
                        </td>
                        <td>
                          <RiskBadge level={p.risk_level} />
                        </td>
                        <td>
                          <ScopeBadge s={byId.get(p.company.id) ?? { access_level: p.access_level }} user={user} />
                        </td>
                        <td className="hide-sm">
                          <Link to={`/companies/${p.company.id}`}>{p.company.name}</Link>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            )}
          </Card>
        </>
      )}
    </main>
  );
}
