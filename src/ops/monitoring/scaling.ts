// `accunode scaling recommend`: the spec's vertical (scale up / down) and horizontal (read
// replica out / in) triggers evaluated on the figures the 5-minute alarms job stored in
// metric_samples. Each figure says where it comes from; one that was not measured makes its
// trigger undecidable (never assumed).
import type { Sql } from '../../db/pool.js';
import { samplesInWindow } from '../../repositories/monitoring.js';

export interface Sample {
  metric: string;
  value: number | null;
  source: string;
  taken_at: Date;
}

interface TriggerFigure {
  trigger: string;
  figure: string;
  window_min: number;
  samples: number;
  average: number | null;
  condition: string;
  met: boolean | null;
  source: string;
}

interface Recommendation {
  actions: Array<'scale_up' | 'scale_down' | 'add_read_replica' | 'remove_read_replica'>;
  summary: string;
  figures: TriggerFigure[];
  replicas: number | null;
  max_connections: number | null;
}

const SHORT_WINDOW = 10; // two 5-minute periods: a sustained breach, as the CPU alarm
const LONG_WINDOW = 30; // the spec: "scale down after 30 min"

function windowOf(samples: Sample[], metric: string, now: Date, minutes: number): Sample[] {
  const from = now.getTime() - minutes * 60_000;
  return samples.filter((s) => s.metric === metric && s.taken_at.getTime() > from && s.taken_at.getTime() <= now.getTime());
}

function evaluate(
  samples: Sample[],
  now: Date,
  trigger: string,
  metric: string,
  label: string,
  minutes: number,
  op: '>' | '<',
  threshold: number,
): TriggerFigure {
  const w = windowOf(samples, metric, now, minutes);
  const vals = w.filter((s) => s.value !== null).map((s) => s.value as number);
  // A window is covered when it holds a sample per 5-minute period (at least two).
  const needed = Math.max(2, Math.floor(minutes / 5) - 1);
  const avg = vals.length > 0 ? Math.round((vals.reduce((a, b) => a + b, 0) / vals.length) * 10) / 10 : null;
  const last = w[w.length - 1];
  const unavailableReason = w.find((s) => s.value === null)?.source;
  let met: boolean | null = null;
  let source = last?.source ?? 'no samples: the alarms job (every 5 minutes) stores them';
  if (vals.length >= needed && avg !== null) met = op === '>' ? avg > threshold : avg < threshold;
  else if (vals.length === 0 && unavailableReason) source = unavailableReason;
  else source = `${vals.length} of ${needed} samples needed in ${minutes} min; ${source}`;
  return { trigger, figure: label, window_min: minutes, samples: vals.length, average: avg, condition: `${op} ${threshold}`, met, source };
}

/** Pure: the spec's triggers on the given samples. */
export function recommendScaling(samples: Sample[], opts: { now: Date; maxConnections?: number | null; replicas?: number | null }): Recommendation {
  const now = opts.now;
  const maxConn = opts.maxConnections ?? latest(samples, 'db_max_connections') ?? 200;
  const replicas = opts.replicas ?? latest(samples, 'db_replicas');
  const up = [
    evaluate(samples, now, 'scale up', 'db_cpu_percent', 'CPU %', SHORT_WINDOW, '>', 80),
    evaluate(samples, now, 'scale up', 'host_memory_percent', 'memory %', SHORT_WINDOW, '>', 85),
    evaluate(samples, now, 'scale up', 'db_connections', 'connections', SHORT_WINDOW, '>', Math.round(maxConn * 0.8)),
  ];
  const down = [
    evaluate(samples, now, 'scale down', 'db_cpu_percent', 'CPU %', LONG_WINDOW, '<', 30),
    evaluate(samples, now, 'scale down', 'host_memory_percent', 'memory %', LONG_WINDOW, '<', 40),
    evaluate(samples, now, 'scale down', 'db_connections', 'connections', LONG_WINDOW, '<', Math.round(maxConn * 0.25)),
  ];
  const out = [
    evaluate(samples, now, 'add read replica', 'db_read_iops', 'read IOPS', SHORT_WINDOW, '>', 8000),
    evaluate(samples, now, 'add read replica', 'db_read_latency_ms', 'read latency ms', SHORT_WINDOW, '>', 50),
    evaluate(samples, now, 'add read replica', 'db_cpu_percent', 'primary CPU %', SHORT_WINDOW, '>', 70),
  ];
  const inn = [
    evaluate(samples, now, 'remove read replica', 'db_read_iops', 'read IOPS', LONG_WINDOW, '<', 2000),
    evaluate(samples, now, 'remove read replica', 'db_read_latency_ms', 'read latency ms', LONG_WINDOW, '<', 10),
  ];
  const actions: Recommendation['actions'] = [];
  const reasons: string[] = [];
  const anyMet = (fs: TriggerFigure[]) => fs.filter((f) => f.met === true);
  const allMet = (fs: TriggerFigure[]) => fs.every((f) => f.met === true);
  if (anyMet(up).length > 0) {
    actions.push('scale_up');
    reasons.push(`scale up (next instance size): ${anyMet(up).map((f) => `${f.figure} ${f.average} ${f.condition}`).join(', ')}`);
  } else if (allMet(down)) {
    actions.push('scale_down');
    reasons.push(`scale down: for ${LONG_WINDOW} min ${down.map((f) => `${f.figure} ${f.average} ${f.condition}`).join(', ')}`);
  }
  if (anyMet(out).length > 0) {
    if (replicas !== null && replicas >= 3) reasons.push('read replica triggers met but already at the maximum of 3 replicas');
    else {
      actions.push('add_read_replica');
      reasons.push(`add a read replica: ${anyMet(out).map((f) => `${f.figure} ${f.average} ${f.condition}`).join(', ')}`);
    }
  } else if (replicas !== null && replicas > 1 && allMet(inn)) {
    actions.push('remove_read_replica');
    reasons.push(`remove a read replica (min 1): for ${LONG_WINDOW} min ${inn.map((f) => `${f.figure} ${f.average} ${f.condition}`).join(', ')} (replica idle time is not measured)`);
  }
  const undecided = [...up, ...down, ...out].filter((f) => f.met === null).map((f) => f.figure);
  const summary =
    actions.length > 0
      ? reasons.join('; ')
      : `no change recommended${reasons.length ? ` (${reasons.join('; ')})` : ''}${undecided.length ? `; undecidable for lack of samples: ${[...new Set(undecided)].join(', ')}` : ''}`;
  return { actions, summary, figures: [...up, ...down, ...out, ...inn], replicas, max_connections: maxConn };
}

function latest(samples: Sample[], metric: string): number | null {
  const s = samples.filter((x) => x.metric === metric && x.value !== null).sort((a, b) => b.taken_at.getTime() - a.taken_at.getTime())[0];
  return s ? (s.value as number) : null;
}

async function loadSamples(sql: Sql, now: Date, minutes = LONG_WINDOW): Promise<Sample[]> {
  const from = new Date(now.getTime() - minutes * 60_000);
  return samplesInWindow(sql, from, now);
}

export async function scalingRecommendation(sql: Sql, opts: { now?: Date } = {}): Promise<Recommendation> {
  const now = opts.now ?? new Date();
  return recommendScaling(await loadSamples(sql, now), { now });
}
