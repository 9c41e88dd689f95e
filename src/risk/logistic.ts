/**
 * Logistic regression fitted by Newton-Raphson (IRLS) with an L2 penalty on the slopes, plus an
 * optional non-negativity constraint per slope (active set: drop the most negative slope, refit).
 * Used for the scorecard on WoE features and for the blending stacker on component log-odds, where a
 * negative weight would make the blend non-monotone in its inputs.
 */

interface LogisticFit {
  intercept: number;
  coefficients: number[];
  iterations: number;
  converged: boolean;
}

interface LogisticOptions {
  l2?: number;
  nonNegative?: boolean;
  /**
   * Lower bound on every slope (implies nonNegative): fitted as slope = minSlope + gamma with
   * gamma >= 0, so a ratio collinear with another still keeps its known direction in the score.
   */
  minSlope?: number;
  maxIterations?: number;
}

/** Solves A x = b for symmetric positive definite A (row-major, size p) by Cholesky. */
function choleskySolve(a: Float64Array, b: Float64Array, p: number): Float64Array {
  const l = new Float64Array(p * p);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * p + j]!;
      for (let k = 0; k < j; k++) s -= l[i * p + k]! * l[j * p + k]!;
      if (i === j) {
        l[i * p + i] = Math.sqrt(Math.max(s, 1e-12));
      } else {
        l[i * p + j] = s / l[j * p + j]!;
      }
    }
  }
  const z = new Float64Array(p);
  for (let i = 0; i < p; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i * p + k]! * z[k]!;
    z[i] = s / l[i * p + i]!;
  }
  const x = new Float64Array(p);
  for (let i = p - 1; i >= 0; i--) {
    let s = z[i]!;
    for (let k = i + 1; k < p; k++) s -= l[k * p + i]! * x[k]!;
    x[i] = s / l[i * p + i]!;
  }
  return x;
}

function fitActive(columns: readonly Float64Array[], y: ArrayLike<number>, l2: number, maxIt: number, offset: Float64Array | null): LogisticFit {
  const n = y.length;
  const p = columns.length + 1;
  const beta = new Float64Array(p);
  let ybar = 0;
  for (let i = 0; i < n; i++) ybar += y[i]!;
  ybar = Math.min(1 - 1e-9, Math.max(1e-9, ybar / n));
  beta[0] = Math.log(ybar / (1 - ybar));
  const eta = new Float64Array(n);
  let converged = false;
  let it = 0;
  for (; it < maxIt; it++) {
    eta.fill(beta[0]!);
    if (offset) for (let i = 0; i < n; i++) eta[i] = eta[i]! + offset[i]!;
    for (let j = 1; j < p; j++) {
      const c = columns[j - 1]!;
      const b = beta[j]!;
      for (let i = 0; i < n; i++) eta[i] = eta[i]! + b * c[i]!;
    }
    const hess = new Float64Array(p * p);
    const grad = new Float64Array(p);
    for (let i = 0; i < n; i++) {
      const mu = 1 / (1 + Math.exp(-eta[i]!));
      const w = Math.max(mu * (1 - mu), 1e-12);
      const r = mu - y[i]!;
      grad[0] = grad[0]! + r;
      hess[0] = hess[0]! + w;
      for (let j = 1; j < p; j++) {
        const xj = columns[j - 1]![i]!;
        grad[j] = grad[j]! + r * xj;
        hess[j] = hess[j]! + w * xj;
        for (let k = 1; k <= j; k++) hess[j * p + k] = hess[j * p + k]! + w * xj * columns[k - 1]![i]!;
      }
    }
    for (let j = 1; j < p; j++) {
      hess[j * p] = hess[j]!;
      for (let k = 1; k < j; k++) hess[k * p + j] = hess[j * p + k]!;
      hess[j * p + j] = hess[j * p + j]! + l2;
      grad[j] = grad[j]! + l2 * beta[j]!;
    }
    const step = choleskySolve(hess, grad, p);
    let maxStep = 0;
    for (let j = 0; j < p; j++) {
      beta[j] = beta[j]! - step[j]!;
      maxStep = Math.max(maxStep, Math.abs(step[j]!));
    }
    if (maxStep < 1e-10) {
      converged = true;
      it++;
      break;
    }
  }
  return { intercept: beta[0]!, coefficients: Array.from(beta.subarray(1)), iterations: it, converged };
}

export function fitLogistic(columns: readonly Float64Array[], y: ArrayLike<number>, opts: LogisticOptions = {}): LogisticFit {
  const l2 = opts.l2 ?? 1;
  const maxIt = opts.maxIterations ?? 50;
  const active = columns.map((_, j) => j);
  const floor = opts.minSlope ?? 0;
  let offset: Float64Array | null = null;
  if (floor > 0) {
    offset = new Float64Array(y.length);
    for (const c of columns) for (let i = 0; i < offset.length; i++) offset[i] = offset[i]! + floor * c[i]!;
  }
  for (;;) {
    const fit = fitActive(
      active.map((j) => columns[j]!),
      y,
      l2,
      maxIt,
      offset,
    );
    const full = new Array<number>(columns.length).fill(floor);
    active.forEach((j, k) => (full[j] = floor + fit.coefficients[k]!));
    if (!opts.nonNegative && !(floor > 0)) return { ...fit, coefficients: full };
    let worst = -1;
    let worstVal = 0;
    active.forEach((j, k) => {
      const c = fit.coefficients[k]!;
      if (c < worstVal) {
        worstVal = c;
        worst = j;
      }
    });
    if (worst < 0) return { ...fit, coefficients: full };
    active.splice(active.indexOf(worst), 1);
  }
}
