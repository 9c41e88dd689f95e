// The operations history tables (migration-owned, read and written as monitoring_user or the
// owner): alarm states and their transitions, the counter snapshots a periodic evaluation takes
// its deltas against (ops_snapshots, one row per source), and the metric samples the
// Operations page charts and `scaling recommend` reads.
import type { Sql } from '../db/pool.js';

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

export async function putSnapshot(sql: Sql, source: string, takenAt: Date, data: unknown): Promise<void> {
  // Through JSON once so Dates and undefined fields are stored as JSON would write them.
  await sql`
    insert into ops_snapshots (source, taken_at, data) values (${source}, ${takenAt}, ${sql.json(JSON.parse(JSON.stringify(data)) as never)})
    on conflict (source) do update set taken_at = excluded.taken_at, data = excluded.data`;
}

export async function getSnapshot<T>(sql: Sql, source: string): Promise<{ taken_at: Date; data: T } | null> {
  const [r] = await sql<{ taken_at: Date; data: T }[]>`select taken_at, data from ops_snapshots where source = ${source}`;
  return r ?? null;
}

export interface AlarmStateRow {
  name: string;
  state: AlarmState;
  since: Date;
  breaches: number;
  last_value: number | null;
  last_reason: string | null;
  evaluated_at: Date;
}

export async function alarmStates(sql: Sql): Promise<AlarmStateRow[]> {
  return sql<AlarmStateRow[]>`select name, state, since, breaches, last_value, last_reason, evaluated_at from alarm_states order by name`;
}

/** Stores an alarm's state; `since` moves only when the state changes. */
export async function putAlarmState(sql: Sql, s: { name: string; state: AlarmState; breaches: number; value: number | null; reason: string; at: Date }): Promise<void> {
  await sql`
    insert into alarm_states (name, state, since, breaches, last_value, last_reason, evaluated_at)
    values (${s.name}, ${s.state}, ${s.at}, ${s.breaches}, ${s.value}, ${s.reason}, ${s.at})
    on conflict (name) do update set
      since = case when alarm_states.state = excluded.state then alarm_states.since else excluded.since end,
      state = excluded.state, breaches = excluded.breaches, last_value = excluded.last_value,
      last_reason = excluded.last_reason, evaluated_at = excluded.evaluated_at`;
}

export interface AlarmTransitionRow {
  id: number;
  name: string;
  from_state: string | null;
  to_state: string;
  value: number | null;
  reason: string | null;
  at: Date;
  notified: boolean;
  notify_error: string | null;
}

export async function addAlarmTransition(
  sql: Sql,
  t: { name: string; from: AlarmState | null; to: AlarmState; value: number | null; threshold: number | null; reason: string; at: Date },
): Promise<number> {
  const [r] = await sql<{ id: number }[]>`
    insert into alarm_transitions (name, from_state, to_state, value, threshold, reason, at)
    values (${t.name}, ${t.from}, ${t.to}, ${t.value}, ${t.threshold}, ${t.reason}, ${t.at}) returning id`;
  return Number(r!.id);
}

export async function markTransitionNotified(sql: Sql, id: number, res: { ok: boolean; error?: string | undefined }): Promise<void> {
  await sql`update alarm_transitions set notified = ${res.ok}, notify_error = ${res.error ?? null} where id = ${id}`;
}

/** Newest first. */
export async function alarmHistory(sql: Sql, opts: { limit?: number; name?: string } = {}): Promise<AlarmTransitionRow[]> {
  const rows = await sql<AlarmTransitionRow[]>`
    select id, name, from_state, to_state, value, reason, at, notified, notify_error from alarm_transitions
    where ${opts.name ? sql`name = ${opts.name}` : sql`true`}
    order by at desc, id desc limit ${opts.limit ?? 50}`;
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

/** Oldest first, for charts. */
export async function transitionsInWindow(sql: Sql, from: Date, to: Date) {
  return sql<Array<{ name: string; from_state: string | null; to_state: string; value: number | null; reason: string | null; at: Date }>>`
    select name, from_state, to_state, value, reason, at from alarm_transitions where at > ${from} and at <= ${to} order by at, id`;
}

export interface MetricSample {
  metric: string;
  value: number | null;
  source: string;
}

export async function addSamples(sql: Sql, rows: readonly MetricSample[], at: Date): Promise<void> {
  if (rows.length === 0) return;
  await sql`insert into metric_samples ${sql(rows.map((r) => ({ metric: r.metric, value: r.value, source: r.source, taken_at: at })))}`;
}

/** Samples in (from, to], oldest first. */
export async function samplesInWindow(sql: Sql, from: Date, to: Date) {
  return sql<Array<MetricSample & { taken_at: Date }>>`
    select metric, value, source, taken_at from metric_samples where taken_at > ${from} and taken_at <= ${to} order by taken_at, id`;
}
