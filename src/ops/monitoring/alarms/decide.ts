// From a reading and the stored state to the next state: pure, so the period rules are tested
// without servers (test/ops/alarm-decide.test.ts).
import type { OpsConfig } from '../../types.js';
import type { AlarmDef, AlarmResult, AlarmState, Reading } from './definitions.js';

export const NOT_EVALUATED: Reading = { value: null, breach: null, reason: 'unavailable: not evaluated', threshold: null, periodic: false };

/**
 * A breach counts once per closed period for a periodic reading (an on-demand evaluation
 * between two scheduled ones must not count the same period twice); an unmeasurable figure
 * resets the count and is INSUFFICIENT_DATA.
 */
export function decide(def: AlarmDef, rd: Reading, stored: { state: AlarmState; breaches: number } | undefined, periodClosed: boolean, cfg: OpsConfig): AlarmResult {
  const prevBreaches = stored?.breaches ?? 0;
  let breaches: number;
  if (rd.breach === null) breaches = 0;
  else if (!rd.periodic || periodClosed) breaches = rd.breach ? prevBreaches + 1 : 0;
  else breaches = prevBreaches;
  const periods = def.periods(cfg);
  const state: AlarmState = rd.breach === null ? 'INSUFFICIENT_DATA' : breaches >= periods ? 'ALARM' : 'OK';
  const previous = stored?.state ?? null;
  return {
    name: def.name,
    state,
    previous_state: previous,
    value: rd.value,
    threshold: rd.threshold,
    unit: def.unit,
    condition: def.threshold(cfg),
    breaches,
    reason: rd.reason + (rd.breach && state === 'OK' ? ` (breach ${breaches} of ${periods} periods)` : ''),
    transition: previous !== state,
  };
}

/** A transition into or out of ALARM is what the webhook hears about. */
export function notifies(r: AlarmResult): boolean {
  return r.transition && (r.state === 'ALARM' || r.previous_state === 'ALARM');
}

/** Of several instances' readings (each Redis), the one the alarm shows: a breach, else the highest. */
export function worst(rs: Reading[]): Reading {
  const firing = rs.find((r) => r.breach === true);
  if (firing) return firing;
  const ok = rs.filter((r) => r.breach === false);
  if (ok.length > 0) return ok.reduce((a, b) => ((b.value ?? 0) > (a.value ?? 0) ? b : a));
  return rs[0] ?? { value: null, breach: null, reason: 'unavailable', threshold: null, periodic: false };
}
