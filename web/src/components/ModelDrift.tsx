// The latest model drift run (weekly job or `accunode model monitor`): per model kind, the PSI of
// each ratio and of the PD between the training data and recent predictions, with the share of
// missing values. Super admins only: it is a cross-tenant view.
import { api } from '../api';
import { Card, Empty, ErrorState, Loading, useAsync, TableWrap } from './ui';
import { DriftChart } from './charts';
import { dateTime, num } from '../format';

interface FieldDrift {
  field: string;
  psi: number | null;
  status: string;
  missing_share_training: number | null;
  missing_share_recent: number | null;
}
interface DriftReport {
  scope: 'all' | 'tenant';
  tenant_name: string | null;
  kind: 'annual' | 'quarterly';
  model: { name: string; version: string };
  rows: number;
  pd_rows: number;
  pd: { psi: number | null; status: string } | null;
  fields: FieldDrift[];
  status: string;
}
interface DriftAnswer {
  taken_at: string | null;
  run: { computed_at: string; window_days: number; reports: DriftReport[] } | null;
}

const share = (v: number | null) => (v === null ? '–' : `${num(v * 100, 1)} %`);
const STATUS_TEXT: Record<string, string> = { stable: 'stable', moderate: 'moderate shift', significant: 'significant shift', no_data: 'no data' };

export function ModelDrift({ tick }: { tick: number }) {
  const d = useAsync(() => api.get<DriftAnswer>('/ops/model-drift'), [tick]);
  return (
    <Card title="Model drift" id="o-drift">
      <div data-testid="model-drift">
        {d.loading && !d.data && <Loading what="Reading the latest drift run" />}
        {d.error !== null && <ErrorState error={d.error} retry={d.reload} />}
        {d.data && !d.data.run && (
          <Empty title="No drift run yet">The weekly job runs on Mondays at 05:00 UTC; `accunode model monitor` runs one now.</Empty>
        )}
        {d.data?.run && (
          <>
            <p className="muted small">
              Computed {dateTime(d.data.run.computed_at)} over the predictions of the last {d.data.run.window_days} days against each model&apos;s training data.
              PSI above 0.1 is a moderate shift, above 0.25 a significant one (the Model-Drift alarm).
            </p>
            <div className="grid2">
              {d.data.run.reports
                .filter((r) => r.scope === 'all')
                .map((r) => {
                  const kind = r.kind === 'annual' ? 'Annual' : 'Quarterly';
                  const rows = [
                    ...(r.pd ? [{ name: 'Probability of default', psi: r.pd.psi, status: r.pd.status }] : []),
                    ...r.fields.map((f) => ({ name: f.field.replaceAll('_', ' '), psi: f.psi, status: f.status })),
                  ];
                  return (
                    <section key={r.kind} aria-label={`${kind} model drift`}>
                      <h3>
                        {kind}: {STATUS_TEXT[r.status] ?? r.status}
                      </h3>
                      <p className="muted small">
                        {r.model.name} {r.model.version} · {num(r.rows, 0)} predictions ({num(r.pd_rows, 0)} made by this version)
                      </p>
                      {r.rows === 0 ? (
                        <Empty title="No recent predictions of this kind" />
                      ) : (
                        <>
                          <DriftChart rows={rows} label={`${kind} model, population stability index`} />
                          <TableWrap label="Drift by ratio">
                            <table className="table compact">
                              <thead>
                                <tr>
                                  <th scope="col">Ratio</th>
                                  <th scope="col" className="num">PSI</th>
                                  <th scope="col" className="num">Missing (training)</th>
                                  <th scope="col" className="num">Missing (recent)</th>
                                </tr>
                              </thead>
                              <tbody>
                                {r.fields.map((f) => (
                                  <tr key={f.field}>
                                    <th scope="row">{f.field.replaceAll('_', ' ')}</th>
                                    <td className="num">{f.psi === null ? '–' : num(f.psi, 3)}</td>
                                    <td className="num">{share(f.missing_share_training)}</td>
                                    <td className="num">{share(f.missing_share_recent)}</td>
                                  </tr>
                                ))}
                              </tbody>
                            </table>
                          </TableWrap>
                        </>
                      )}
                    </section>
                  );
                })}
            </div>
          </>
        )}
      </div>
    </Card>
  );
}
