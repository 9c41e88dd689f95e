// The state rules of an alarm, without servers: consecutive breaches per closed period,
// INSUFFICIENT_DATA for a figure that could not be measured, and which transitions notify.
import { describe, expect, it } from 'vitest';
import { ALARMS } from '../../src/ops/monitoring/alarms/definitions.js';
import { decide, notifies, worst } from '../../src/ops/monitoring/alarms/decide.js';
import { DEFAULT_OPS_CONFIG } from '../../src/ops/types.js';

const cfg = DEFAULT_OPS_CONFIG;
const cpu = ALARMS.find((a) => a.name === 'AccuNode-DB-HighCPU')!;
const conns = ALARMS.find((a) => a.name === 'AccuNode-DB-HighConnections')!;
const breach = (value: number, periodic = true) => ({ value, breach: true, reason: 'measured', threshold: 80, periodic });
const fine = (value: number, periodic = true) => ({ value, breach: false, reason: 'measured', threshold: 80, periodic });

describe('alarm state rules', () => {
  it('DB CPU needs two closed periods over the threshold before ALARM', () => {
    const first = decide(cpu, breach(95), { state: 'OK', breaches: 0 }, true, cfg);
    expect(first).toMatchObject({ state: 'OK', breaches: 1, transition: false });
    expect(first.reason).toContain('breach 1 of 2 periods');
    const second = decide(cpu, breach(95), { state: first.state, breaches: first.breaches }, true, cfg);
    expect(second).toMatchObject({ state: 'ALARM', breaches: 2, previous_state: 'OK', transition: true });
    expect(notifies(second)).toBe(true);
  });

  it('an evaluation inside an open period does not count the same period twice', () => {
    const r = decide(cpu, breach(95), { state: 'OK', breaches: 1 }, false, cfg);
    expect(r).toMatchObject({ state: 'OK', breaches: 1 });
    // A point-in-time figure counts whenever it is read.
    expect(decide(conns, breach(90, false), { state: 'OK', breaches: 0 }, false, cfg)).toMatchObject({ state: 'ALARM', breaches: 1 });
  });

  it('a figure below the threshold resets the count and recovers with a notification', () => {
    const r = decide(cpu, fine(10), { state: 'ALARM', breaches: 3 }, true, cfg);
    expect(r).toMatchObject({ state: 'OK', breaches: 0, previous_state: 'ALARM', transition: true });
    expect(notifies(r)).toBe(true);
  });

  it('an unmeasurable figure is INSUFFICIENT_DATA with its reason, and only ALARM edges notify', () => {
    const r = decide(cpu, { value: null, breach: null, reason: 'unavailable: no source', threshold: 80, periodic: true }, { state: 'OK', breaches: 1 }, true, cfg);
    expect(r).toMatchObject({ state: 'INSUFFICIENT_DATA', breaches: 0, value: null, reason: 'unavailable: no source', transition: true });
    expect(notifies(r)).toBe(false);
    expect(decide(cpu, fine(10), undefined, true, cfg)).toMatchObject({ previous_state: null, transition: true });
    expect(notifies(decide(cpu, fine(10), undefined, true, cfg))).toBe(false);
  });

  it('of several Redis instances the breaching one is shown, else the highest', () => {
    expect(worst([fine(10), breach(90), fine(50)]).value).toBe(90);
    expect(worst([fine(10), fine(50)]).value).toBe(50);
    expect(worst([{ value: null, breach: null, reason: 'down', threshold: null, periodic: false }, fine(5)]).value).toBe(5);
    expect(worst([]).breach).toBeNull();
  });
});
