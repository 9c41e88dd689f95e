/**
 * The implied rating of a probability of default: the rating-agency grade whose one-year default
 * rate the PD is closest to, on the scale the reference models are calibrated to
 * (src/risk/reference-data.ts, TARGET_DEFAULT_RATES). Boundaries sit at the geometric mean of
 * neighbouring grades' rates, because default rates grow roughly geometrically down the scale;
 * AAA's target is 0, so its upper bound is half of AA's rate.
 *
 * A deployment can replace the scale (IMPLIED_RATING_SCALE, see README) with its own grades and
 * upper bounds; the default is the reference calibration.
 */
import { RATINGS, TARGET_DEFAULT_RATES } from './reference-data.js';

export interface RatingGrade {
  grade: string;
  /** The grade applies to PDs up to and including this bound (the last grade has Infinity). */
  maxPd: number;
}

function referenceScale(): RatingGrade[] {
  const rates = TARGET_DEFAULT_RATES;
  return RATINGS.map((grade, k) => {
    if (k === RATINGS.length - 1) return { grade, maxPd: Infinity };
    const here = rates[k]!;
    const next = rates[k + 1]!;
    const maxPd = here === 0 ? next / 2 : Math.sqrt(here * next);
    return { grade, maxPd };
  });
}

export const REFERENCE_RATING_SCALE: readonly RatingGrade[] = Object.freeze(referenceScale());

/** Checks a scale: grades named, bounds strictly increasing, the last one open-ended. */
export function validateRatingScale(scale: readonly RatingGrade[]): string | null {
  if (scale.length < 2) return 'a rating scale needs at least two grades';
  for (let i = 0; i < scale.length; i++) {
    const g = scale[i]!;
    if (!g.grade || typeof g.grade !== 'string') return `grade ${i + 1} has no name`;
    if (i === scale.length - 1) {
      if (g.maxPd !== Infinity) return `the last grade (${g.grade}) must cover every PD above the one before it`;
    } else if (!(Number.isFinite(g.maxPd) && g.maxPd > 0 && g.maxPd < 1)) {
      return `grade ${g.grade} needs an upper PD bound between 0 and 1`;
    } else if (i > 0 && !(g.maxPd > scale[i - 1]!.maxPd)) {
      return `grade ${g.grade}'s bound must be above ${scale[i - 1]!.grade}'s`;
    }
  }
  return null;
}

/** The grade for a PD in [0, 1] on the given scale (the reference scale by default). */
export function impliedRating(pd: number, scale: readonly RatingGrade[] = REFERENCE_RATING_SCALE): string {
  for (const g of scale) if (pd <= g.maxPd) return g.grade;
  return scale[scale.length - 1]!.grade;
}
