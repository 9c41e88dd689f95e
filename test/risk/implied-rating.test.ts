import { describe, expect, it } from 'vitest';
import { impliedRating, REFERENCE_RATING_SCALE, validateRatingScale } from '../../src/risk/implied-rating.js';
import { RATINGS, TARGET_DEFAULT_RATES } from '../../src/risk/reference-data.js';

describe('implied rating', () => {
  it('maps each grade\'s own target default rate to that grade', () => {
    RATINGS.forEach((r, k) => {
      const rate = TARGET_DEFAULT_RATES[k]!;
      expect(impliedRating(rate)).toBe(r);
    });
  });

  it('is monotone: a higher PD never gets a better grade', () => {
    let last = 0;
    for (let pd = 0; pd <= 1; pd += 0.0001) {
      const idx = RATINGS.indexOf(impliedRating(pd) as (typeof RATINGS)[number]);
      expect(idx).toBeGreaterThanOrEqual(last);
      last = idx;
    }
    expect(impliedRating(1)).toBe('CCC');
  });

  it('puts the BBB/BB boundary at the geometric mean of their rates', () => {
    const bound = Math.sqrt(0.0015 * 0.006);
    expect(impliedRating(bound)).toBe('BBB');
    expect(impliedRating(bound * 1.0001)).toBe('BB');
  });

  it('validates custom scales', () => {
    expect(validateRatingScale(REFERENCE_RATING_SCALE)).toBeNull();
    expect(validateRatingScale([{ grade: 'A', maxPd: 0.1 }])).toMatch(/two grades/);
    expect(validateRatingScale([{ grade: 'A', maxPd: 0.1 }, { grade: 'B', maxPd: 0.5 }])).toMatch(/last grade/);
    expect(
      validateRatingScale([{ grade: 'A', maxPd: 0.1 }, { grade: 'B', maxPd: 0.05 }, { grade: 'C', maxPd: Infinity }]),
    ).toMatch(/above A/);
    const custom = [{ grade: 'IG', maxPd: 0.003 }, { grade: 'HY', maxPd: Infinity }];
    expect(validateRatingScale(custom)).toBeNull();
    expect(impliedRating(0.001, custom)).toBe('IG');
    expect(impliedRating(0.2, custom)).toBe('HY');
  });
});
