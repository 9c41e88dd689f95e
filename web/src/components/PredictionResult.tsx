import { finalProbability, type Prediction } from '../api';
import { num, pct } from '../format';
import { Link } from '../router';
import { DriversChart } from './charts';
import { RiskBadge, Stat, TableWrap } from './ui';
import { RatingBadge } from '../rating';

const DIRECTION: Record<string, string> = { increases_risk: 'raises risk', decreases_risk: 'lowers risk', neutral: 'neutral' };

export function ComponentModels({ p }: { p: Prediction }) {
  const rows: Array<[string, number | null | undefined]> =
    p.ensemble_probability !== undefined
      ? [['Ensemble (final)', p.ensemble_probability], ['Logistic regression', p.logistic_probability], ['Gradient-boosted trees', p.gbm_probability], ['Step (score band)', p.step_probability]]
      : [['Blend (final)', p.probability], ['Logistic regression', p.logistic_probability], ['Step (score band)', p.step_probability]];
  return (
    <TableWrap label="Component models">
    <table className="table compact">
      <caption className="sr-only">Component models</caption>
      <thead>
        <tr>
          <th scope="col">Model</th>
          <th scope="col" className="num">Probability of default</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([name, v]) => (
          <tr key={name}>
            <th scope="row">{name}</th>
            <td className="num">{pct(v ?? null)}</td>
          </tr>
        ))}
      </tbody>
    </table>
    </TableWrap>
  );
}

export function ExplanationView({ p }: { p: Prediction }) {
  const e = p.explanation;
  if (!e) return null;
  const notReported = new Set(e.contributions.filter((c) => c.value === null).map((c) => c.field));
  return (
    <div className="explanation">
      <h3>What drove it</h3>
      <p className="muted small">
        Score {num(e.score, 1)} (band {e.score_band}); inputs {Math.round(e.completeness * 100)} % complete; component models agree {Math.round(e.agreement * 100)} %. Bars show each ratio's contribution to the
        log-odds of default against an average company: red raises the risk, green lowers it.
        {notReported.size > 0 && ' A ratio that was not reported still moves the result: the models treat a missing value as companies that leave it out tend to be, and its bar shows that effect.'}
      </p>
      {e.top_drivers.length > 0 && (
        <ol className="drivers">
          {e.top_drivers.map((d) => (
            <li key={d.field}>
              <strong>{d.label}</strong>
              {notReported.has(d.field) ? ' (not reported)' : ''} {DIRECTION[d.direction] ?? d.direction} ({d.log_odds > 0 ? '+' : ''}
              {num(d.log_odds, 3)})
            </li>
          ))}
        </ol>
      )}
      <DriversChart contributions={e.contributions.map((c) => ({ label: c.value === null ? `${c.label} (not reported)` : c.label, log_odds: c.log_odds }))} />
      <TableWrap label="Contributions by ratio">
      <table className="table compact">
        <caption className="sr-only">Contributions by ratio</caption>
        <thead>
          <tr>
            <th scope="col">Ratio</th>
            <th scope="col" className="num">Value</th>
            <th scope="col">Bin</th>
            <th scope="col" className="num">Log-odds</th>
            <th scope="col">Effect</th>
          </tr>
        </thead>
        <tbody>
          {e.contributions.map((c) => (
            <tr key={c.field}>
              <th scope="row">{c.label}</th>
              <td className="num">{c.value === null ? <em>not reported</em> : `${num(c.value, 4)}${c.unit === '%' ? ' %' : '×'}`}</td>
              <td>{c.value === null ? '–' : c.bin}</td>
              <td className="num">{num(c.log_odds, 3)}</td>
              <td>{DIRECTION[c.direction] ?? c.direction}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </TableWrap>
    </div>
  );
}

export function PredictionResult({ p, heading = 'Result' }: { p: Prediction; heading?: string }) {
  return (
    <section className="card result" aria-labelledby="result-title" aria-live="polite">
      <div className="card-head">
        <h2 id="result-title">{heading}</h2>
        <Link to={`/companies/${p.company.id}`}>
          {p.company.symbol} · {p.company.name} →
        </Link>
      </div>
      <div className="stats">
        <Stat label="Probability of default" value={
            <>
              <span data-testid="result-probability">{pct(finalProbability(p))}</span> <RatingBadge pd={finalProbability(p)} />
            </>
          } hint={`${p.reporting_year}${p.reporting_quarter ? ' ' + p.reporting_quarter : ''}`} />
        <Stat label="Risk level" value={<RiskBadge level={p.risk_level} />} />
        <Stat label="Confidence" value={pct(p.confidence, 0)} hint="model agreement × input completeness" />
        <Stat label="Model" value={<span className="small">{p.model.name ?? '–'}</span>} hint={p.model.version ?? undefined} />
      </div>
      <div className="grid2">
        <div>
          <h3>Component models</h3>
          <ComponentModels p={p} />
        </div>
        <div>
          <ExplanationView p={p} />
        </div>
      </div>
    </section>
  );
}
