// The implied rating beside a PD: the shared mapping (src/risk/implied-rating.ts) on the scale
// the API is configured with (IMPLIED_RATING_SCALE, served at /analytics/rating-scale).
import { useEffect, useState } from 'react';
import { api } from './api';
import { impliedRating, REFERENCE_RATING_SCALE, type RatingGrade } from '../../src/risk/implied-rating.ts';

let loaded: Promise<readonly RatingGrade[]> | null = null;

function loadScale(): Promise<readonly RatingGrade[]> {
  loaded ??= api
    .get<{ grades: Array<{ grade: string; max_pd: number | null }> }>('/analytics/rating-scale')
    .then((r) => r.grades.map((g) => ({ grade: g.grade, maxPd: g.max_pd ?? Infinity })))
    .catch(() => {
      loaded = null;
      return REFERENCE_RATING_SCALE;
    });
  return loaded;
}

function useRatingScale(): readonly RatingGrade[] | null {
  const [scale, setScale] = useState<readonly RatingGrade[] | null>(null);
  useEffect(() => {
    let live = true;
    void loadScale().then((s) => live && setScale(s));
    return () => {
      live = false;
    };
  }, []);
  return scale;
}

export function RatingBadge({ pd }: { pd: number | null | undefined }) {
  const scale = useRatingScale();
  if (pd === null || pd === undefined || !scale) return null;
  const grade = impliedRating(pd, scale);
  return (
    <span className="badge rating" title="Implied rating: the agency grade whose default rate this PD matches">
      <span className="sr-only">implied rating </span>
      {grade}
    </span>
  );
}
