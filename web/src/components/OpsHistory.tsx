// The operations page's last 24 hours: the sampled figures as small line charts, the alarm
// transitions, and the queues with their workers. Each chart names its figure and gives its last
// value and range in text (aria-label), so a screen reader gets the same reading.
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { api } from '../api';
import { dateTime, num } from '../format';
import { Card, Empty, ErrorState, Loading, useAsync, TableWrap } from './ui';

interface History {
  from: string;
  to: string;
  series: Record<string, Array<{ at: string; value: number | null }>>;
  alarms: Array<{ name: string; from_state: string | null; to_state: string; value: number | null; reason: string | null; at: string }>;
}
interface Queues { taken_at: string; queues: Array<{ queue: string; counts: Record<string, number>; workers: number | null }> | null; note?: string }

const CHARTS: Array<{ title: string; unit: string; lines: Array<{ metric: string; name: string; color: string }> }> = [
  { title: 'Database connections', unit: '', lines: [{ metric: 'db_connections', name: 'in use', color: '#1d4ed8' }, { metric: 'db_max_connections', name: 'max', color: '#6b7280' }] },
  { title: 'Cache hit rate', unit: '%', lines: [{ metric: 'app_cache_hit_percent', name: 'application cache', color: '#15803d' }] },
  { title: 'Redis memory used', unit: '%', lines: [{ metric: 'redis_memory_percent', name: 'Redis', color: '#b91c1c' }, { metric: 'cache_redis_memory_percent', name: 'cache Redis', color: '#a16207' }] },
  { title: 'Queue depth', unit: 'jobs', lines: [{ metric: 'queue_waiting', name: 'waiting', color: '#1d4ed8' }, { metric: 'queue_active', name: 'active', color: '#15803d' }, { metric: 'queue_failed', name: 'failed', color: '#b91c1c' }] },
  { title: 'Job throughput', unit: '/min', lines: [{ metric: 'jobs_completed_per_min', name: 'completed', color: '#15803d' }, { metric: 'jobs_failed_per_min', name: 'failed', color: '#b91c1c' }] },
  { title: 'API latency (p95)', unit: 'ms', lines: [{ metric: 'api_latency_p95_ms', name: 'p95', color: '#7c3aed' }] },
  { title: 'API requests', unit: '/s', lines: [{ metric: 'api_requests_per_s', name: 'requests', color: '#1d4ed8' }] },
  { title: 'API error rate (5xx)', unit: '%', lines: [{ metric: 'api_error_percent', name: '5xx', color: '#b91c1c' }] },
  { title: 'Database CPU', unit: '%', lines: [{ metric: 'db_cpu_percent', name: 'CPU', color: '#1d4ed8' }] },
];

const hhmm = (iso: string) => iso.slice(11, 16);

function MiniChart({ h, chart }: { h: History; chart: (typeof CHARTS)[number] }) {
  const byTime = new Map<string, Record<string, number | string | null>>();
  for (const l of chart.lines) for (const p of h.series[l.metric] ?? []) byTime.set(p.at, { ...(byTime.get(p.at) ?? { at: p.at }), [l.metric]: p.value });
  const rows = [...byTime.values()].sort((a, b) => String(a.at).localeCompare(String(b.at)));
  const summary = chart.lines
    .map((l) => {
      const vals = (h.series[l.metric] ?? []).map((p) => p.value).filter((v): v is number => v !== null);
      return vals.length ? `${l.name} now ${num(vals[vals.length - 1]!, 1)}${chart.unit}, range ${num(Math.min(...vals), 1)} to ${num(Math.max(...vals), 1)}` : `${l.name}: no samples`;
    })
    .join('; ');
  return (
    <figure className="mini-chart">
      <figcaption>
        {chart.title} {chart.unit && <span className="muted small">({chart.unit})</span>}
      </figcaption>
      {rows.length === 0 ? (
        <p className="muted small">No samples in the last 24 hours.</p>
      ) : (
        <div role="img" aria-label={`${chart.title}, last 24 hours: ${summary}`}>
          <ResponsiveContainer width="100%" height={140}>
            <LineChart data={rows} margin={{ top: 6, right: 8, left: 0, bottom: 0 }} accessibilityLayer={false}>
              <CartesianGrid strokeDasharray="3 3" />
              <XAxis dataKey="at" tickFormatter={hhmm} tick={{ fontSize: 11 }} minTickGap={24} />
              <YAxis width={44} tick={{ fontSize: 11 }} domain={[0, 'auto']} />
              <Tooltip labelFormatter={(v) => dateTime(String(v))} />
              {chart.lines.map((l) => (
                <Line key={l.metric} type="monotone" dataKey={l.metric} name={l.name} stroke={l.color} strokeWidth={2} dot={rows.length < 3} connectNulls isAnimationActive={false} />
              ))}
            </LineChart>
          </ResponsiveContainer>
        </div>
      )}
    </figure>
  );
}

export function OpsHistory({ tick }: { tick: number }) {
  const hist = useAsync(() => api.get<History>('/ops/history', { hours: 24 }), [tick]);
  const q = useAsync(() => api.get<Queues>('/ops/queues').catch(() => null), [tick]);
  return (
    <>
      <Card title="Last 24 hours" id="o-history">
        {hist.loading && !hist.data && <Loading what="Reading the samples" />}
        {hist.error !== null && <ErrorState error={hist.error} retry={hist.reload} />}
        {hist.data && (
          <div className="mini-charts" data-testid="ops-history">
            {CHARTS.map((c) => (
              <MiniChart key={c.title} h={hist.data!} chart={c} />
            ))}
          </div>
        )}
      </Card>
      <div className="grid2">
        <Card title="Queues and workers" id="o-queues">
          {!q.data?.queues ? (
            <Empty title={q.loading ? 'Reading the queues' : 'Queue figures are not available here'}>{q.data?.note}</Empty>
          ) : (
            <table className="table compact" data-testid="ops-queues">
              <thead>
                <tr>
                  <th scope="col">Queue</th>
                  <th scope="col" className="num">Waiting</th>
                  <th scope="col" className="num">Active</th>
                  <th scope="col" className="num">Delayed</th>
                  <th scope="col" className="num">Failed</th>
                  <th scope="col" className="num">Workers</th>
                </tr>
              </thead>
              <tbody>
                {q.data.queues.map((s) => (
                  <tr key={s.queue}>
                    <th scope="row">{s.queue}</th>
                    <td className="num">{s.counts.waiting ?? 0}</td>
                    <td className="num">{s.counts.active ?? 0}</td>
                    <td className="num">{s.counts.delayed ?? 0}</td>
                    <td className="num">{s.counts.failed ?? 0}</td>
                    <td className="num">{s.workers === null ? '–' : s.workers === 0 ? <span className="level alarm">none</span> : s.workers}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
        <Card title="Alarm history (24 h)" id="o-alarm-history">
          {hist.data && hist.data.alarms.length === 0 ? (
            <Empty title="No alarm changed state in the last 24 hours" />
          ) : (
            <TableWrap label="Alarm history"><table className="table compact">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Alarm</th>
                  <th scope="col">Change</th>
                </tr>
              </thead>
              <tbody>
                {(hist.data?.alarms ?? []).slice().reverse().map((a) => (
                  <tr key={`${a.name}-${a.at}`}>
                    <td className="small">{dateTime(a.at)}</td>
                    <th scope="row">
                      {a.name}
                      {a.reason && <div className="muted small">{a.reason}</div>}
                    </th>
                    <td>
                      {a.from_state ?? 'new'} → {a.to_state}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table></TableWrap>
          )}
        </Card>
      </div>
    </>
  );
}
