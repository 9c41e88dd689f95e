export const pct = (p: number | null | undefined, digits = 2) => (p === null || p === undefined || Number.isNaN(p) ? '–' : `${(p * 100).toFixed(digits)} %`);
export const num = (x: number | null | undefined, digits = 2) => (x === null || x === undefined ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: digits }));
export const dateTime = (s: string | null | undefined) => (s ? new Date(s).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' }) : '–');
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  if (seconds < 1) return '< 1 s';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return m < 90 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
// Risk level colours: text on these backgrounds passes WCAG AA (checked against 4.5:1).
export const RISK_COLORS: Record<string, { bg: string; fg: string; chart: string }> = {
  LOW: { bg: '#dcfce7', fg: '#14532d', chart: '#16a34a' },
  MEDIUM: { bg: '#fef9c3', fg: '#713f12', chart: '#ca8a04' },
  HIGH: { bg: '#ffedd5', fg: '#7c2d12', chart: '#ea580c' },
  CRITICAL: { bg: '#fee2e2', fg: '#7f1d1d', chart: '#dc2626' },
};

/** Market capitalisation in words an analyst reads: "$3.1 trillion", "$850 million". */
export function money(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  const units: Array<[number, string]> = [[1e12, 'trillion'], [1e9, 'billion'], [1e6, 'million']];
  for (const [n, w] of units) if (Math.abs(x) >= n) return `$${(x / n).toLocaleString('en-US', { maximumFractionDigits: 1 })} ${w}`;
  return `$${x.toLocaleString('en-US')}`;
}
