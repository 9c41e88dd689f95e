import { useEffect, useState } from 'react';
import { api, roleAtLeast } from '../api';
import { OpsHistory } from '../components/OpsHistory';
import { ModelDrift } from '../components/ModelDrift';
import { useAuth } from '../auth';
import { Card, Empty, ErrorState, Loading, PageTitle, Stat, useAsync, TableWrap } from '../components/ui';
import { dateTime, num } from '../format';

interface Overview {
  taken_at: string;
  database: { status: string; latency_ms?: number; error?: string };
  redis: Array<{ name: string; status: string; latency_ms?: number; error?: string }>;
  alarms: Array<{ name: string; description: string; state: string; since: string | null }> | null;
  maintenance: Array<{ id: number; kind: string; dry_run: boolean; started_at: string; duration_s: number | null; outcome: string; rows_affected: number }> | null;
  /** null for tenant admins: platform-wide figures are for super admins. */
  backups: { configured: boolean; count: number | null; last_good_at: string | null; note: string } | null;
  replicas: { configured: number } | null;
  notes: string[];
}
interface Figure {
  group: string;
  name: string;
  value: number | string | null;
  unit: string;
  status: string;
  threshold: string;
  note: string;
}
interface MonitorReport {
  taken_at: string;
  status: string;
  figures: Figure[];
  long_running: Array<{ pid: number; duration_s?: number; state?: string; query?: string }>;
  largest_tables: Array<{ table: string; total_bytes: number }>;
  replication: Array<{ replica: string; source: string; state: string | null; lag_seconds: number | null; note: string }>;
}

const LEVEL_CLASS: Record<string, string> = { OK: 'ok', WARN: 'warn', ALARM: 'alarm', INSUFFICIENT_DATA: 'na', UNAVAILABLE: 'na', up: 'ok', down: 'alarm', succeeded: 'ok', failed: 'alarm', running: 'warn', skipped: 'na' };
const Level = ({ v }: { v: string }) => <span className={`level ${LEVEL_CLASS[v] ?? 'na'}`}>{v.replace('_', ' ')}</span>;
const REFRESH_MS = 30_000;
const bytes = (n: number) => (n > 1 << 30 ? `${num(n / (1 << 30), 1)} GB` : n > 1 << 20 ? `${num(n / (1 << 20), 1)} MB` : `${num(n / 1024, 0)} kB`);

export function Operations() {
  const { user } = useAuth();
  const superAdmin = roleAtLeast(user?.role, 'super_admin');
  // Every 30 s the page reads everything again (the figures stay on screen while it does).
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), REFRESH_MS);
    return () => clearInterval(t);
  }, []);
  const ov = useAsync(() => api.get<Overview>('/ops/overview'), [tick]);
  const mon = useAsync(() => (superAdmin ? api.get<MonitorReport>('/ops/monitor') : Promise.resolve(null)), [superAdmin, tick]);

  return (
    <main id="main" className="page">
      <PageTitle sub="The figures operators see with `accunode monitor`, `alarms` and `maintenance history`.">Operations</PageTitle>
      <div className="toolbar">
        <button type="button" className="secondary" onClick={() => setTick((n) => n + 1)}>
          Refresh
        </button>
        {ov.data && <span className="muted small" aria-live="polite">Taken {dateTime(ov.data.taken_at)} · refreshes every 30 s</span>}
      </div>
      {ov.loading && !ov.data && <Loading what="Checking the platform" />}
      {ov.error !== null && <ErrorState error={ov.error} retry={ov.reload} />}
      {ov.data && (
        <>
          <div className="stats" data-testid="ops-health">
            <Stat label="PostgreSQL" value={<Level v={ov.data.database.status} />} hint={ov.data.database.latency_ms !== undefined ? `${ov.data.database.latency_ms} ms` : ov.data.database.error} />
            {ov.data.redis.map((r) => (
              <Stat key={r.name} label={r.name === 'redis' ? 'Redis' : 'Cache Redis'} value={<Level v={r.status} />} hint={r.latency_ms !== undefined ? `${r.latency_ms} ms` : r.error} />
            ))}
            {ov.data.backups && (
              <Stat label="Backups" value={ov.data.backups.configured ? (ov.data.backups.last_good_at ? 'OK' : 'none yet') : 'not configured'} hint={ov.data.backups.last_good_at ? `last good ${dateTime(ov.data.backups.last_good_at)}` : ov.data.backups.configured ? ov.data.backups.note : 'backups module not set up here'} />
            )}
            {ov.data.replicas && <Stat label="Read replicas" value={ov.data.replicas.configured === 0 ? 'not configured' : String(ov.data.replicas.configured)} />}
          </div>
          {ov.data.notes.map((n) => (
            <p key={n} className="notice info">
              {n}
            </p>
          ))}
          <div className="grid2">
            <Card title="Alarms" id="o-alarms">
              {ov.data.alarms === null ? (
                <Empty title={superAdmin ? 'Alarm states unavailable' : 'Alarm states are shown to super admins'} />
              ) : (
                <TableWrap label="Alarms"><table className="table compact">
                  <thead>
                    <tr>
                      <th scope="col">Alarm</th>
                      <th scope="col">State</th>
                      <th scope="col">Since</th>
                    </tr>
                  </thead>
                  <tbody>
                    {ov.data.alarms.map((a) => (
                      <tr key={a.name}>
                        <th scope="row">
                          {a.name}
                          <div className="muted small">{a.description}</div>
                        </th>
                        <td>
                          <Level v={a.state} />
                        </td>
                        <td className="small">{dateTime(a.since)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table></TableWrap>
              )}
            </Card>
            <Card title="Recent maintenance runs" id="o-maint">
              {!ov.data.maintenance || ov.data.maintenance.length === 0 ? (
                <Empty title="No maintenance run yet">The scheduler runs daily, weekly and monthly maintenance.</Empty>
              ) : (
                <TableWrap label="Recent maintenance runs"><table className="table compact">
                  <thead>
                    <tr>
                      <th scope="col">Started</th>
                      <th scope="col">Kind</th>
                      <th scope="col">Outcome</th>
                      <th scope="col" className="num">Duration</th>
                      <th scope="col" className="num">Rows</th>
                    </tr>
                  </thead>
                  <tbody>
                    {ov.data.maintenance.map((m) => (
                      <tr key={m.id}>
                        <td className="small">{dateTime(m.started_at)}</td>
                        <td>
                          {m.kind}
                          {m.dry_run ? ' (dry run)' : ''}
                        </td>
                        <td>
                          <Level v={m.outcome} />
                        </td>
                        <td className="num">{m.duration_s === null ? '–' : `${num(m.duration_s, 1)} s`}</td>
                        <td className="num">{num(m.rows_affected, 0)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table></TableWrap>
              )}
            </Card>
          </div>
        </>
      )}
      {superAdmin && <OpsHistory tick={tick} />}
      {superAdmin && <ModelDrift tick={tick} />}
      {superAdmin && (
        <Card title="Cluster figures (super admin)" id="o-monitor">
          {mon.loading && !mon.data && <Loading what="Measuring" />}
          {mon.error !== null && <ErrorState error={mon.error} retry={mon.reload} />}
          {mon.data && (
            <>
              <p>
                Overall: <Level v={mon.data.status} />
              </p>
              <TableWrap label="Cluster figures">
                <table className="table compact">
                  <thead>
                    <tr>
                      <th scope="col">Figure</th>
                      <th scope="col" className="num">Value</th>
                      <th scope="col">Status</th>
                      <th scope="col" className="hide-sm">Threshold</th>
                      <th scope="col" className="hide-sm">Source</th>
                    </tr>
                  </thead>
                  <tbody>
                    {mon.data.figures.map((f) => (
                      <tr key={`${f.group}-${f.name}`}>
                        <th scope="row">
                          {f.group === 'postgres' ? 'PostgreSQL' : 'Redis'}: {f.name}
                        </th>
                        <td className="num">
                          {f.value === null ? '–' : String(f.value)} {f.unit}
                        </td>
                        <td>{f.status === '-' ? '' : <Level v={f.status} />}</td>
                        <td className="small hide-sm">{f.threshold === '-' ? '' : f.threshold}</td>
                        <td className="small muted hide-sm">{f.note}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
              <div className="grid2">
                <div>
                  <h3>Largest tables</h3>
                  <ul className="plain">
                    {mon.data.largest_tables.map((t) => (
                      <li key={t.table}>
                        {t.table}: {bytes(t.total_bytes)}
                      </li>
                    ))}
                  </ul>
                </div>
                <div>
                  <h3>Replicas</h3>
                  {mon.data.replication.length === 0 ? (
                    <p className="muted">No replica streams from this server and none is configured.</p>
                  ) : (
                    <ul className="plain">
                      {mon.data.replication.map((r) => (
                        <li key={r.replica}>
                          {r.replica}: {r.lag_seconds === null ? 'lag unknown' : `${num(r.lag_seconds, 1)} s behind`} <span className="muted small">({r.note})</span>
                        </li>
                      ))}
                    </ul>
                  )}
                </div>
              </div>
            </>
          )}
        </Card>
      )}
    </main>
  );
}
