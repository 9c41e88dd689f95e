import { useState } from 'react';
import { ExportButtons } from '../components/ExportButtons';
import { WatchButton } from '../components/WatchButton';
import { api, ApiError, finalProbability, type Kind, type Paged, type Prediction } from '../api';
import { useAuth } from '../auth';
import { canModify, scopeLabel, ScopeBadge } from '../scope';
import { RatingBadge } from '../rating';
import type { SymbolView } from './Symbol';
import { HistoryChart } from '../components/charts';
import { ComponentModels, ExplanationView } from '../components/PredictionResult';
import { Card, Empty, ErrorState, Loading, PageTitle, RiskBadge, useAsync, TableWrap } from '../components/ui';
import { dateTime, money, num, pct } from '../format';
import { Link, navigate } from '../router';
import { fieldsOf } from '../validate';

interface Company {
  id: string;
  symbol: string;
  name: string;
  sector: string | null;
  country: string | null;
  exchange: string | null;
  market_cap: number | null;
  access_level: string;
  organization_id: string | null;
  created_by: string | null;
}

/** GET /companies/{id}/sector-context: the latest PD against the sector's companies the caller sees. */
interface SectorContext {
  sector: string | null;
  probability: number | null;
  peers: number;
  percentile: number | null;
  sector_median_probability: number | null;
}

const ordinal = (n: number) => {
  const r = Math.round(n);
  const s = r % 100 >= 11 && r % 100 <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[r % 10] ?? 'th';
  return `${r}${s}`;
};

const period = (p: Prediction) => (p.reporting_quarter ? `${p.reporting_year} ${p.reporting_quarter}` : p.reporting_year);
const r100 = (x: unknown) => (typeof x === 'number' ? Math.round(x * 10000) / 100 : null);

export function CompanyPage({ id }: { id: string }) {
  const { user } = useAuth();
  // What the previous page did (a merge lands here), shown once.
  const [notice] = useState(() => {
    const n = sessionStorage.getItem('accunode.notice');
    sessionStorage.removeItem('accunode.notice');
    return n;
  });
  const [kind, setKind] = useState<Kind>('annual');
  const [selected, setSelected] = useState<string | null>(null);
  const company = useAsync(() => api.get<Company>(`/companies/${id}`), [id]);
  const history = useAsync(
    () => api.get<Paged<Prediction>>(`/predictions/${kind}`, { company_id: id, sort: 'reporting_year', limit: 100 }),
    [id, kind],
  );
  const items = (history.data?.items ?? []).slice().sort((a, b) => period(a).localeCompare(period(b)));
  const chosenId = selected ?? items[items.length - 1]?.id ?? null;
  const detail = useAsync(() => (chosenId ? api.get<Prediction>(`/predictions/${kind}/${chosenId}`, { explain: true }) : Promise.resolve(null)), [chosenId, kind]);
  const fields = fieldsOf(kind);
  const context = useAsync(() => api.get<SectorContext>(`/companies/${id}/sector-context`, { type: kind }), [id, kind, history.data]);

  if (company.error) return (
    <main id="main" className="page">
      <PageTitle>Company</PageTitle>
      <ErrorState error={company.error} retry={company.reload} />
      <p>
        <Link to="/portfolio">← Back to the portfolio</Link>
      </p>
    </main>
  );
  const c = company.data;
  const series =
    kind === 'annual'
      ? [
          { key: 'final', name: 'Final (blend)', color: '#1d4ed8' },
          { key: 'logistic', name: 'Logistic', color: '#15803d', dashed: true },
          { key: 'step', name: 'Step', color: '#9333ea', dashed: true },
        ]
      : [
          { key: 'final', name: 'Final (ensemble)', color: '#1d4ed8' },
          { key: 'logistic', name: 'Logistic', color: '#15803d', dashed: true },
          { key: 'gbm', name: 'Gradient-boosted', color: '#ea580c', dashed: true },
          { key: 'step', name: 'Step', color: '#9333ea', dashed: true },
        ];
  const rows = items.map((p) => ({ period: period(p), final: r100(finalProbability(p)), logistic: r100(p.logistic_probability), gbm: r100(p.gbm_probability), step: r100(p.step_probability) }));

  return (
    <main id="main" className="page">
      <PageTitle
        sub={
          c ? (
            <>
              {[c.sector, c.country, c.exchange, c.market_cap !== null ? `market cap ${money(c.market_cap)}` : null].filter(Boolean).join(' · ')} <ScopeBadge s={c} user={user} />
            </>
          ) : undefined
        }
      >
        {c ? `${c.symbol} · ${c.name}` : 'Company'}
      </PageTitle>
      {notice && (
        <p className="notice success" role="status">
          {notice}
        </p>
      )}
      {c && <SameSymbol company={c} />}
      <div className="toolbar">
        <fieldset className="segmented">
          <legend className="sr-only">Model</legend>
          {(['annual', 'quarterly'] as const).map((k) => (
            <label key={k} className={kind === k ? 'on' : ''}>
              <input type="radio" name="company-kind" value={k} checked={kind === k} onChange={() => { setKind(k); setSelected(null); }} />
              {k === 'annual' ? 'Annual' : 'Quarterly'}
            </label>
          ))}
        </fieldset>
        {c && (
          <Link className="button secondary" to={`/predict?type=${kind}&symbol=${encodeURIComponent(c.symbol)}&name=${encodeURIComponent(c.name)}`}>
            New {kind} prediction
          </Link>
        )}
        {c && <WatchButton companyId={id} symbol={c.symbol} />}
      </div>
      {history.loading && !history.data && <Loading what="Loading history" />}
      {history.error !== null && <ErrorState error={history.error} retry={history.reload} />}
      {history.data && items.length === 0 && <Empty title={`No ${kind} predictions for this company yet`} />}
      {items.length > 0 && (
        <>
          <Card title={`Probability of default by ${kind === 'annual' ? 'year' : 'quarter'}`} id="c-history">
            {context.data && context.data.percentile !== null && context.data.sector && (
              <p className="small" data-testid="sector-context">
                {context.data.peers > 1 ? (
                  <>
                    Latest PD {pct(context.data.probability)}: <strong>{ordinal(context.data.percentile)} percentile</strong> in {context.data.sector} (lower is safer;{' '}
                    {context.data.peers} companies you can see) · sector median {pct(context.data.sector_median_probability)} <RatingBadge pd={context.data.sector_median_probability} />
                  </>
                ) : (
                  <>The only {context.data.sector} company you can see with {kind === 'annual' ? 'an annual' : 'a quarterly'} PD: no sector percentile yet.</>
                )}
              </p>
            )}
            <HistoryChart rows={rows} series={series} />
          </Card>
          <Card title="Predictions and ratios" id="c-ratios" actions={<ExportButtons path={`/exports/predictions/${kind}`} query={{ company_id: id, sort: 'reporting_year', explain: true }} what={`${kind} history with explanations`} />}>
            <p className="muted small">Select a period to see its component models and explanation.</p>
            <TableWrap label="Predictions and ratios">
              <table className="table compact">
                <thead>
                  <tr>
                    <th scope="col">Period</th>
                    <th scope="col" className="num">PD</th>
                    <th scope="col">Risk</th>
                    <th scope="col" className="num">Confidence</th>
                    {fields.map((f) => (
                      <th scope="col" className="num" key={f.name} title={f.description}>
                        {f.label} ({f.unit})
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {items.map((p) => (
                    <tr key={p.id} className={p.id === chosenId ? 'selected' : ''} aria-selected={p.id === chosenId}>
                      <th scope="row">
                        <button type="button" className="linklike" onClick={() => setSelected(p.id)} aria-pressed={p.id === chosenId}>
                          {period(p)}
                        </button>
                      </th>
                      <td className="num">
                        {pct(finalProbability(p))} <RatingBadge pd={finalProbability(p)} />
                      </td>
                      <td>
                        <RiskBadge level={p.risk_level} />
                      </td>
                      <td className="num">{pct(p.confidence, 0)}</td>
                      {fields.map((f) => (
                        <td className="num" key={f.name}>
                          {p[f.name] === null || p[f.name] === undefined ? <span className="muted">not reported</span> : num(p[f.name] as number, 4)}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          </Card>
          {detail.data && (
            <Card title={`${period(detail.data)}: models and explanation`} id="c-detail">
              <p className="small muted">
                Model {detail.data.model.name ?? '–'} {detail.data.model.version ?? ''} · made {dateTime(detail.data.created_at)} · confidence {pct(detail.data.confidence, 0)}
              </p>
              <div className="grid2">
                <div>
                  <h3>Component models</h3>
                  <ComponentModels p={detail.data} />
                </div>
                <div>
                  <ExplanationView p={detail.data} />
                </div>
              </div>
            </Card>
          )}
          {detail.error !== null && <ErrorState error={detail.error} retry={detail.reload} />}
        </>
      )}
    </main>
  );
}

/**
 * The other companies with this symbol the user can see, a link to all their predictions, and
 * the clean-up a duplicate needs: merge this one into another, or delete it as a mistake.
 */
function SameSymbol({ company }: { company: Company }) {
  const { user } = useAuth();
  const view = useAsync(() => api.get<SymbolView>(`/companies/symbol/${encodeURIComponent(company.symbol)}`), [company.symbol, company.id]);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const others = (view.data?.companies ?? []).filter((o) => o.id !== company.id && o.is_active);
  const mine = canModify(company, user);
  const count = (view.data?.annual ?? []).filter((p) => p.company.id === company.id).length + (view.data?.quarterly ?? []).filter((p) => p.company.id === company.id).length;
  // A deletion is confirmed against the predictions it removes: until they are counted the
  // button waits (a count of 0 shown while loading would understate what goes).
  const counted = view.data !== null;

  async function act(fn: () => Promise<unknown>, done: string, to: string) {
    setBusy(true);
    setMessage(null);
    try {
      await fn();
      sessionStorage.setItem('accunode.notice', done);
      navigate(to);
    } catch (err) {
      setMessage(err instanceof ApiError ? err.message : 'That did not work. Please try again.');
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" aria-labelledby="same-symbol">
      <div className="card-head">
        <h2 id="same-symbol">{others.length > 0 ? `${company.symbol} in other scopes` : 'This company'}</h2>
        <Link to={`/symbols/${encodeURIComponent(company.symbol)}`}>All {company.symbol} predictions you can see →</Link>
      </div>
      {others.length > 0 ? (
        <>
          <p className="small">
            You can see {others.length === 1 ? 'another company' : `${others.length} other companies`} with the symbol {company.symbol}. This one is visible to <strong>{scopeLabel(company, user).toLowerCase()}</strong>.
          </p>
          <ul className="plain" data-testid="same-symbol">
            {others.map((o) => (
              <li key={o.id}>
                <Link to={`/companies/${o.id}`}>
                  {o.symbol} · {o.name}
                </Link>{' '}
                <ScopeBadge s={o} user={user} />{' '}
                {mine && o.can_add_predictions && (
                  <button
                    type="button"
                    className="secondary small"
                    disabled={busy}
                    onClick={() => void act(() => api.post(`/companies/${company.id}/merge`, { into: o.id }), `${company.symbol} merged: its predictions are now here.`, `/companies/${o.id}`)}
                  >
                    Merge this company into it
                  </button>
                )}
              </li>
            ))}
          </ul>
        </>
      ) : (
        <p className="small muted">No other company with the symbol {company.symbol} is visible to you.</p>
      )}
      {mine && (
        <div className="actions">
          {!confirmDelete ? (
            <button type="button" className="secondary danger" disabled={view.loading} onClick={() => setConfirmDelete(true)}>
              Delete this company…
            </button>
          ) : (
            <div className="notice warn" role="group" aria-label="Confirm deletion">
              <p>
                Delete {company.symbol} · {company.name} and {counted ? `its ${count} prediction${count === 1 ? '' : 's'}` : 'all its predictions'}? The audit log keeps a copy; the company is gone for everyone who can see it.
              </p>
              <button type="button" className="danger" disabled={busy} onClick={() => void act(() => api.del(`/companies/${company.id}?purge=true`), `${company.symbol} deleted.`, '/portfolio')}>
                Yes, delete it
              </button>{' '}
              <button type="button" className="secondary" onClick={() => setConfirmDelete(false)}>
                Keep it
              </button>
            </div>
          )}
        </div>
      )}
      {message && (
        <p className="notice error" role="alert">
          {message}
        </p>
      )}
    </section>
  );
}
