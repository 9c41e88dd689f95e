// Charts (recharts): each has a text alternative (aria-label + a visually hidden summary table
// where the numbers matter), so a screen reader gets the same figures. recharts' keyboard layer
// is off: it made every chart and sparkline an unnamed tab stop, the figures being in the label.
import { Bar, BarChart, CartesianGrid, Cell, Legend, Line, LineChart, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { pct, RISK_COLORS } from '../format';

export function Sparkline({ points, label }: { points: Array<{ period: string; probability: number }>; label: string }) {
  if (points.length < 2) return <span className="muted small">{points.length === 1 ? pct(points[0]!.probability, 1) : '–'}</span>;
  const first = points[0]!.probability;
  const last = points[points.length - 1]!.probability;
  const up = last > first;
  return (
    <span role="img" aria-label={`${label}: ${pct(first, 1)} in ${points[0]!.period} to ${pct(last, 1)} in ${points[points.length - 1]!.period}`} className="spark">
      <LineChart accessibilityLayer={false} width={96} height={28} data={points} margin={{ top: 3, bottom: 3, left: 2, right: 2 }}>
        <YAxis hide domain={['dataMin', 'dataMax']} />
        <Line type="monotone" dataKey="probability" stroke={up ? '#dc2626' : '#16a34a'} strokeWidth={2} dot={false} isAnimationActive={false} />
      </LineChart>
    </span>
  );
}

export function RiskBars({ counts, height = 220 }: { counts: Record<string, number>; height?: number }) {
  const data = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'].map((l) => ({ level: l, count: counts[l] ?? 0 }));
  return (
    <div role="img" aria-label={`Risk distribution: ${data.map((d) => `${d.level} ${d.count}`).join(', ')}`}>
      <ResponsiveContainer width="100%" height={height}>
        <BarChart accessibilityLayer={false} data={data} margin={{ top: 8, right: 8, left: 0, bottom: 0 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="level" />
          <YAxis allowDecimals={false} width={40} />
          <Tooltip />
          <Bar dataKey="count" name="predictions" isAnimationActive={false}>
            {data.map((d) => (
              <Cell key={d.level} fill={RISK_COLORS[d.level]!.chart} />
            ))}
          </Bar>
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}

export function HBars({ data, label, height }: { data: Array<{ name: string; value: number }>; label: string; height?: number }) {
  const h = height ?? Math.max(120, data.length * 28 + 30);
  return (
    <div role="img" aria-label={`${label}: ${data.map((d) => `${d.name} ${d.value}`).join(', ')}`}>
      <ResponsiveContainer width="100%" height={h}>
        <BarChart accessibilityLayer={false} data={data} layout="vertical" margin={{ top: 4, right: 16, left: 8, bottom: 4 }}>
          <CartesianGrid strokeDasharray="3 3" horizontal={false} />
          <XAxis type="number" allowDecimals={false} />
          <YAxis type="category" dataKey="name" width={120} tick={{ fontSize: 12 }} />
          <Tooltip />
          <Bar dataKey="value" name="predictions" fill="#2563eb" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}

export function Histogram({ bins }: { bins: Array<{ from: number; to: number; count: number }> }) {
  const data = bins.map((b) => ({ range: `${(b.from * 100).toFixed(1)}–${(b.to * 100).toFixed(1)} %`, count: b.count }));
  return (
    <div role="img" aria-label={`Probability histogram: ${data.map((d) => `${d.range}: ${d.count}`).join('; ')}`}>
      <ResponsiveContainer width="100%" height={220}>
        <BarChart accessibilityLayer={false} data={data} margin={{ top: 8, right: 8, left: 0, bottom: 24 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="range" angle={-30} textAnchor="end" interval={0} tick={{ fontSize: 11 }} height={50} />
          <YAxis allowDecimals={false} width={40} />
          <Tooltip />
          <Bar dataKey="count" name="predictions" fill="#7c3aed" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}

export function TrendChart({ data }: { data: Array<{ bucket: string; count: number; average_probability: number }> }) {
  const rows = data.map((d) => ({ bucket: d.bucket.slice(0, 10), count: d.count, avg: Math.round(d.average_probability * 10000) / 100 }));
  return (
    <div role="img" aria-label={`Over time: ${rows.map((r) => `${r.bucket} ${r.count} predictions, average ${r.avg} %`).join('; ')}`}>
      <ResponsiveContainer width="100%" height={240}>
        <LineChart accessibilityLayer={false} data={rows} margin={{ top: 8, right: 8, left: 0, bottom: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="bucket" tick={{ fontSize: 11 }} />
          <YAxis yAxisId="l" allowDecimals={false} width={40} />
          <YAxis yAxisId="r" orientation="right" tickFormatter={(v: number) => `${v}%`} width={48} />
          <Tooltip />
          <Legend />
          <Line yAxisId="l" type="monotone" dataKey="count" name="predictions" stroke="#2563eb" strokeWidth={2} isAnimationActive={false} />
          <Line yAxisId="r" type="monotone" dataKey="avg" name="average PD (%)" stroke="#dc2626" strokeWidth={2} isAnimationActive={false} />
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}

export function HistoryChart({ rows, series }: { rows: Array<Record<string, number | string | null>>; series: Array<{ key: string; name: string; color: string; dashed?: boolean }> }) {
  return (
    <div role="img" aria-label={`Probability of default by period: ${rows.map((r) => `${r.period} ${r.final} %`).join('; ')}`}>
      <ResponsiveContainer width="100%" height={260}>
        <LineChart accessibilityLayer={false} data={rows} margin={{ top: 8, right: 12, left: 0, bottom: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="period" tick={{ fontSize: 12 }} />
          <YAxis tickFormatter={(v: number) => `${v}%`} width={64} />
          <Tooltip formatter={(v) => `${v} %`} />
          <Legend />
          {series.map((s) => (
            <Line key={s.key} type="monotone" dataKey={s.key} name={s.name} stroke={s.color} strokeWidth={s.dashed ? 1.5 : 2.5} strokeDasharray={s.dashed ? '5 4' : undefined} connectNulls isAnimationActive={false} />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}

export function DriversChart({ contributions }: { contributions: Array<{ label: string; log_odds: number }> }) {
  const data = [...contributions].sort((a, b) => Math.abs(b.log_odds) - Math.abs(a.log_odds)).map((c) => ({ name: c.label, value: Math.round(c.log_odds * 1000) / 1000 }));
  return (
    <div role="img" aria-label={`Contributions to the log-odds of default: ${data.map((d) => `${d.name} ${d.value > 0 ? '+' : ''}${d.value}`).join(', ')}`}>
      <ResponsiveContainer width="100%" height={Math.max(140, data.length * 30 + 30)}>
        <BarChart accessibilityLayer={false} data={data} layout="vertical" margin={{ top: 4, right: 16, left: 8, bottom: 4 }}>
          <CartesianGrid strokeDasharray="3 3" horizontal={false} />
          {/* Zero is always on the axis: bars are read by their length from it. */}
          <XAxis type="number" domain={[(min: number) => Math.min(0, min), (max: number) => Math.max(0, max)]} tickFormatter={(v: number) => String(Math.round(v * 100) / 100)} />
          <YAxis type="category" dataKey="name" width={190} tick={{ fontSize: 12 }} />
          <ReferenceLine x={0} stroke="#374151" />
          <Tooltip />
          <Bar dataKey="value" name="log-odds vs. average company" isAnimationActive={false}>
            {data.map((d) => (
              <Cell key={d.name} fill={d.value > 0 ? '#dc2626' : '#16a34a'} />
            ))}
          </Bar>
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}

const DRIFT_COLORS: Record<string, string> = { stable: '#15803d', moderate: '#b45309', significant: '#b91c1c', no_data: '#6b7280' };

/** PSI per ratio and of the PD, with the 0.1 (moderate) and 0.25 (significant) lines. */
export function DriftChart({ rows, label }: { rows: Array<{ name: string; psi: number | null; status: string }>; label: string }) {
  const data = rows.map((r) => ({ name: r.name, value: r.psi === null ? 0 : Math.round(r.psi * 1000) / 1000, status: r.status }));
  return (
    <div role="img" aria-label={`${label}: ${rows.map((r) => `${r.name} ${r.psi === null ? 'no data' : `${Math.round(r.psi * 1000) / 1000} (${r.status})`}`).join(', ')}`}>
      <ResponsiveContainer width="100%" height={Math.max(140, data.length * 28 + 40)}>
        <BarChart accessibilityLayer={false} data={data} layout="vertical" margin={{ top: 4, right: 24, left: 8, bottom: 4 }}>
          <CartesianGrid strokeDasharray="3 3" horizontal={false} />
          <XAxis type="number" domain={[0, (max: number) => Math.max(0.3, Math.ceil(max * 10) / 10)]} tickFormatter={(v: number) => String(Math.round(v * 100) / 100)} />
          <YAxis type="category" dataKey="name" width={200} tick={{ fontSize: 12 }} />
          <ReferenceLine x={0.1} stroke="#b45309" strokeDasharray="4 3" label={{ value: '0.1', position: 'top', fontSize: 11 }} />
          <ReferenceLine x={0.25} stroke="#b91c1c" strokeDasharray="4 3" label={{ value: '0.25', position: 'top', fontSize: 11 }} />
          <Tooltip />
          <Bar dataKey="value" name="PSI" isAnimationActive={false}>
            {data.map((d) => (
              <Cell key={d.name} fill={DRIFT_COLORS[d.status] ?? DRIFT_COLORS.no_data} />
            ))}
          </Bar>
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}
