/** Six decimals, as figures are stored and reported (artifacts, metrics, run reports); never -0. */
export function r6(x: number): number {
  const r = Math.round(x * 1e6) / 1e6;
  return r === 0 ? 0 : r;
}
