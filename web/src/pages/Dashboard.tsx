import { useState } from 'react';
import { ExportButtons } from '../components/ExportButtons';
import { api, type Kind } from '../api';
import { Histogram, HBars, RiskBars, TrendChart } from '../components/charts';
import { Card, Empty, ErrorState, Loading, PageTitle, RiskBadge, Stat, useAsync, TableWrap } from '../components/ui';
import { pct } from '../format';
import { Link } from '../router';
import { RatingBadge } from '../rating';

interface Summary {
  type: Kind;
  period: string;
  from: string;
  to: string;
  total: number;
  average_probability: number | null;
  p95_probability: number | null;
  by_risk_level: Record<string, number>;
  by_sector: Record<string, number>;
  histogram: Array<{ from: number; to: number; count: number }>;
  top_risk: Array<{ company_id: string; symbol: string; name: string; sector: string | null; probability: number; risk_level: string; reporting_year: string }>;
  trend: Array<{ bucket: string; count: number; average_probability: number }>;
}

export function Dashboard() {
  const [kind, setKind] = useState<Kind>('annual');
  const [period, setPeriod] = useState('year');
  const [date, setDate] = useState(new Date().toISOString().slice(0, 10));
  const { data, error, loading, reload } = useAsync(() => api.get<Summary>('/analytics/summary', { type: kind, period, date }), [kind, period, date]);

  return (
    <main id="main" className="page">
      <PageTitle sub="Risk across the predictions you can see, for the chosen period (by when they were made).">Dashboard</PageTitle>
      <form className="toolbar" onSubmit={(e) => e.preventDefault()} aria-label="Dashboard filters">
        <div className="field inline">
          <label htmlFor="d-kind">Model</label>
          <select id="d-kind" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
            <option value="annual">Annual</option>
            <option value="quarterly">Quarterly</option>
          </select>
        </div>
        <div className="field inline">
          <label htmlFor="d-period">Period</label>
          <select id="d-period" value={period} onChange={(e) => setPeriod(e.target.value)}>
            <option value="day">Day</option>
            <option value="week">Week</option>
            <option value="month">Month</option>
            <option value="year">Year</option>
          </select>
        </div>
        <div className="field inline">
          <label htmlFor="d-date">Containing</label>
          <input id="d-date" type="date" value={date} onChange={(e) => e.target.value && setDate(e.target.value)} />
        </div>
      </form>
      {loading && !data && <Loading what="Loading statistics" />}
      {error !== null && <ErrorState error={error} retry={reload} />}
      {data && data.total === 0 && (
        <Empty title="No predictions in this period yet">
          <p>
            <Link to="/predict">Make a prediction</Link> or <Link to="/bulk">upload a file</Link>, or choose a longer period.
          </p>
        </Empty>
      )}
      <ByReportingYear kind={kind} />
      {data && data.total > 0 && (
        <>
          <div className="stats" data-testid="dashboard-stats">
            <Stat label="Predictions" value={data.total.toLocaleString('en-US')} hint={`${data.from.slice(0, 10)} to ${data.to.slice(0, 10)}`} />
            <Stat label="Average probability of default" value={<>{pct(data.average_probability)} <RatingBadge pd={data.average_probability} /></>} />
            <Stat label="95th percentile" value={pct(data.p95_probability)} />
            <Stat label="High or critical" value={((data.by_risk_level.HIGH ?? 0) + (data.by_risk_level.CRITICAL ?? 0)).toLocaleString('en-US')} />
          </div>
          <div className="grid2">
            <Card title="Risk distribution" id="c-risk">
              <RiskBars counts={data.by_risk_level} />
            </Card>
            <Card title="By sector" id="c-sector">
              {Object.keys(data.by_sector).length === 0 ? (
                <Empty title="No sectors recorded" />
              ) : (
                <HBars label="Predictions by sector" data={Object.entries(data.by_sector).sort((a, b) => b[1] - a[1]).slice(0, 12).map(([name, value]) => ({ name, value }))} />
              )}
            </Card>
            <Card title="Over time" id="c-trend">
              {data.trend.length === 0 ? <Empty title="No trend yet" /> : <TrendChart data={data.trend} />}
            </Card>
            <Card title="Probability histogram" id="c-hist">
              <Histogram bins={data.histogram} />
            </Card>
          </div>
          <Card
            title="Top-risk companies"
            id="c-top"
            actions={<ExportButtons path={`/exports/predictions/${kind}`} query={{ created_from: data.from, created_to: data.to, sort: '-probability' }} what="this period's predictions, riskiest first" />}
          >
            {data.top_risk.length === 0 ? (
              <Empty title="Nothing to show" />
            ) : (
              <TableWrap label="Highest-risk predictions">
                <table className="table">
                  <thead>
                    <tr>
                      <th scope="col">Company</th>
                      <th scope="col" className="hide-sm">Sector</th>
                      <th scope="col">Period</th>
                      <th scope="col" className="num">Probability</th>
                      <th scope="col">Risk</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.top_risk.map((r) => (
                      <tr key={`${r.company_id}-${r.reporting_year}`}>
                        <th scope="row">
                          <Link to={`/companies/${r.company_id}`}>
                            {r.symbol} · {r.name}
                          </Link>
                        </th>
                        <td className="hide-sm">{r.sector ?? '–'}</td>
                        <td>{r.reporting_year}</td>
                        <td className="num">
                          {pct(r.probability)} <RatingBadge pd={r.probability} />
                        </td>
                        <td>
                          <RiskBadge level={r.risk_level} />
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

interface ByYear {
  years: Array<{ reporting_year: string; count: number; average_probability: number; sectors: Array<{ sector: string; count: number; average_probability: number }> }>;
}

/** Average PD by the year the ratios describe, per sector (from the rollups; not by when predictions were made). */
function ByReportingYear({ kind }: { kind: Kind }) {
  const { data, error, reload } = useAsync(() => api.get<ByYear>('/analytics/by-year', { type: kind }), [kind]);
  if (error) return <ErrorState error={error} retry={reload} />;
  if (!data || data.years.length === 0) return null;
  const years = [...data.years].sort((a, b) => b.reporting_year.localeCompare(a.reporting_year)).slice(0, 6);
  const sectors = [...new Set(years.flatMap((y) => y.sectors.map((s) => s.sector)))].sort();
  return (
    <Card title="By reporting year: average PD per sector" id="c-by-year">
      <TableWrap label="Average PD per sector by reporting year">
        <table className="table compact" data-testid="by-year">
          <caption className="sr-only">Average probability of default by reporting year and sector</caption>
          <thead>
            <tr>
              <th scope="col">Sector</th>
              {years.map((y) => (
                <th scope="col" className="num" key={y.reporting_year}>
                  {y.reporting_year}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            <tr>
              <th scope="row">All sectors</th>
              {years.map((y) => (
                <td className="num" key={y.reporting_year}>
                  <strong>{pct(y.average_probability)}</strong> <RatingBadge pd={y.average_probability} />
                  <div className="muted small">{y.count.toLocaleString('en-US')} predictions</div>
                </td>
              ))}
            </tr>
            {sectors.map((sec) => (
              <tr key={sec}>
                <th scope="row">{sec}</th>
                {years.map((y) => {
                  const c = y.sectors.find((s) => s.sector === sec);
                  return (
                    <td className="num" key={y.reporting_year}>
                      {c ? (
                        <>
                          {pct(c.average_probability)} <RatingBadge pd={c.average_probability} />
                          <div className="muted small">{c.count.toLocaleString('en-US')}</div>
                        </>
                      ) : (
                        <span className="muted">–</span>
                      )}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </Card>
  );
}
