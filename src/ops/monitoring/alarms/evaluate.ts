// One evaluation of every alarm: every 5 minutes by the scheduler, on demand by `accunode
// alarms`. States OK / ALARM (INSUFFICIENT_DATA when a figure cannot be measured, with the
// reason), every transition stored, a webhook called on ALARM and recovery.
//
// Period deltas are taken against the counter snapshot stored by the previous evaluation. The
// snapshot advances only once a full period (ALARM_PERIOD_SECONDS, by the injected clock) has
// passed, so an on-demand evaluation between two scheduled ones measures the period so far
// without shortening the next one; consecutive breaches (DB CPU needs two periods) are counted
// per closed period.
import * as store from '../../../repositories/monitoring.js';
import { round1 } from '../redis.js';
import { nowOf, type OpsDeps } from '../../types.js';
import { decide, notifies, NOT_EVALUATED } from './decide.js';
import { ALARMS, type AlarmEvaluation, type AlarmResult } from './definitions.js';
import { notifyWebhook } from './notify.js';
import { measure, type CounterSnap } from './readings.js';

const SNAPSHOT_SOURCE = 'alarms';

/**
 * Evaluates every alarm once, stores states, transitions and the samples `scaling recommend`
 * reads, and calls ALARM_WEBHOOK_URL for each transition into or out of ALARM.
 */
export async function evaluateAlarms(deps: OpsDeps, opts: { now?: Date } = {}): Promise<AlarmEvaluation> {
  const cfg = deps.config;
  const sql = deps.sql;
  const now = opts.now ?? nowOf(deps);
  const prevSnap = await store.getSnapshot<CounterSnap>(sql, SNAPSHOT_SOURCE);
  const prev = prevSnap?.data ?? null;
  const periodS = prevSnap ? (now.getTime() - prevSnap.taken_at.getTime()) / 1000 : null;
  const periodClosed = periodS === null || periodS >= 0.9 * cfg.ALARM_PERIOD_SECONDS;
  const wallS = prev ? (Date.now() - prev.wall_ms) / 1000 : null;

  const { readings, samples, snap } = await measure(deps, prev, { now, periodS, wallS });

  const stored = new Map((await store.alarmStates(sql)).map((r) => [r.name, r]));
  const results: AlarmResult[] = [];
  const toNotify: Array<{ id: number; r: AlarmResult }> = [];
  for (const def of ALARMS) {
    const r = decide(def, readings.get(def.name) ?? NOT_EVALUATED, stored.get(def.name), periodClosed, cfg);
    results.push(r);
    await store.putAlarmState(sql, { name: r.name, state: r.state, breaches: r.breaches, value: r.value, reason: r.reason, at: now });
    if (r.transition) {
      const id = await store.addAlarmTransition(sql, { name: r.name, from: r.previous_state, to: r.state, value: r.value, threshold: r.threshold, reason: r.reason, at: now });
      if (notifies(r)) toNotify.push({ id, r });
    }
  }
  const notifications: AlarmEvaluation['notifications'] = [];
  if (cfg.ALARM_WEBHOOK_URL) {
    for (const { id, r } of toNotify) {
      const res = await notifyWebhook(deps, cfg.ALARM_WEBHOOK_URL, r, now);
      notifications.push({ alarm: r.name, to: r.state, ...res });
      await store.markTransitionNotified(sql, id, res);
    }
  }

  if (periodClosed) {
    await store.putSnapshot(sql, SNAPSHOT_SOURCE, now, snap);
    await store.addSamples(sql, samples, now);
  }
  return {
    evaluated_at: now,
    period_s: periodS === null ? null : round1(periodS),
    period_closed: periodClosed,
    alarms: results,
    firing: results.filter((r) => r.state === 'ALARM').map((r) => r.name),
    notifications,
    samples,
  };
}
