// The API client: same origin, JSON, the session token kept in memory only (never in
// localStorage). With the cookie option the token lives in an httpOnly cookie the script never
// sees. Every request carries X-Requested-With, which the API requires of cookie-authenticated
// requests that change something (CSRF).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
  /** Field-level messages from a 400/422 (details: [{field, message}]). */
  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    if (Array.isArray(this.details)) for (const d of this.details as Array<{ field?: string; message?: string }>) if (d.field) out[d.field] = d.message ?? 'invalid';
    return out;
  }
}

let token: string | null = null;
let onUnauthorized: (() => void) | null = null;

export function setToken(t: string | null): void {
  token = t;
}
/** The in-memory token (null with a cookie session): auth.tsx ends it when the page goes away. */
export function currentToken(): string | null {
  return token;
}
export function setUnauthorizedHandler(fn: (() => void) | null): void {
  onUnauthorized = fn;
}

/** Whether the last sign-in on this device chose the cookie (a hint only: the cookie is httpOnly). */
const COOKIE_HINT = 'accunode.cookie-session';
export const cookieHint = {
  get: () => {
    try {
      return localStorage.getItem(COOKIE_HINT) === '1';
    } catch {
      return false;
    }
  },
  set: (on: boolean) => {
    try {
      if (on) localStorage.setItem(COOKIE_HINT, '1');
      else localStorage.removeItem(COOKIE_HINT);
    } catch {
      /* private mode */
    }
  },
};

type Query = Record<string, string | number | boolean | null | undefined>;

export function withQuery(path: string, q?: Query): string {
  if (!q) return path;
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `${path}?${s}` : path;
}

export async function request<T>(method: string, path: string, opts: { body?: unknown; form?: FormData; query?: Query; raw?: boolean; quiet401?: boolean } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', 'x-requested-with': 'accunode-web' };
  if (token) headers.authorization = `Bearer ${token}`;
  let body: BodyInit | undefined;
  if (opts.form) body = opts.form;
  else if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let res: Response;
  try {
    res = await fetch(withQuery(`/api/v1${path}`, opts.query), { method, headers, body, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached. Check your connection and try again.');
  }
  if (res.status === 401) {
    if (!opts.quiet401) onUnauthorized?.();
    const e = await res.json().catch(() => null);
    throw new ApiError(401, 'unauthorized', e?.error?.message ?? 'Please sign in.');
  }
  if (!res.ok) {
    const e = await res.json().catch(() => null);
    throw new ApiError(res.status, e?.error?.code ?? 'error', e?.error?.message ?? `Request failed (${res.status})`, e?.error?.details);
  }
  if (opts.raw) return (await res.text()) as T;
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** A file the API streams (an export), with the name the server gives it. */
export async function fetchFile(path: string, query?: Query): Promise<{ blob: Blob; name: string }> {
  const headers: Record<string, string> = { 'x-requested-with': 'accunode-web' };
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(withQuery(`/api/v1${path}`, query), { headers, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached. Check your connection and try again.');
  }
  if (!res.ok) {
    if (res.status === 401) onUnauthorized?.();
    const e = await res.json().catch(() => null);
    throw new ApiError(res.status, e?.error?.code ?? 'error', e?.error?.message ?? `Request failed (${res.status})`, e?.error?.details);
  }
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'export';
  return { blob: await res.blob(), name };
}

export const api = {
  get: <T>(path: string, query?: Query) => request<T>('GET', path, { query }),
  post: <T>(path: string, body?: unknown, query?: Query) => request<T>('POST', path, { body, query }),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, { body }),
  del: <T>(path: string) => request<T>('DELETE', path),
  text: (path: string) => request<string>('GET', path, { raw: true }),
  upload: <T>(path: string, form: FormData, query?: Query) => request<T>('POST', path, { form, query }),
};

// ---- shapes (snake_case, as the API) ----
export type Role = 'user' | 'org_member' | 'org_admin' | 'tenant_admin' | 'super_admin';
export const ROLES: Role[] = ['user', 'org_member', 'org_admin', 'tenant_admin', 'super_admin'];
export const roleAtLeast = (r: Role | undefined, min: Role) => !!r && ROLES.indexOf(r) >= ROLES.indexOf(min);

export interface User {
  id: string;
  email: string;
  username: string;
  first_name: string | null;
  last_name: string | null;
  role: Role;
  tenant_id: string | null;
  organization_id: string | null;
  is_active: boolean;
  /** The e-mail address was confirmed by its link (needed to join an organization). */
  is_verified: boolean;
}
export type RiskLevel = 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';
export type Kind = 'annual' | 'quarterly';

interface Contribution {
  field: string;
  label: string;
  unit: string;
  value: number | null;
  bin: string;
  log_odds: number;
  direction: 'increases_risk' | 'decreases_risk' | 'neutral';
}
export interface Explanation {
  score: number;
  score_band: string;
  completeness: number;
  agreement: number;
  contributions: Contribution[];
  top_drivers: Array<{ field: string; label: string; log_odds: number; direction: string }>;
}
export interface Prediction {
  id: string;
  company: { id: string; symbol: string; name: string; sector: string | null };
  reporting_year: string;
  reporting_quarter?: string;
  probability?: number;
  ensemble_probability?: number;
  logistic_probability: number | null;
  gbm_probability?: number | null;
  step_probability: number | null;
  risk_level: RiskLevel;
  confidence: number;
  model: { name: string | null; version: string | null };
  access_level: string;
  created_at: string;
  explanation?: Explanation;
  [ratio: string]: unknown;
}
export const finalProbability = (p: Prediction) => (p.probability ?? p.ensemble_probability ?? 0) as number;
/** A keyset page: next_cursor continues it; total is exact ('eq') or a lower bound ('gte'). */
export interface Paged<T> {
  items: T[];
  next_cursor: string | null;
  limit: number;
  total: number;
  total_relation: 'eq' | 'gte';
}
export interface Job {
  id: string;
  type: string;
  status: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
  file_name: string | null;
  rows_total: number | null;
  rows_processed: number;
  rows_succeeded: number;
  rows_failed: number;
  rows_superseded: number;
  throughput_rows_per_second: number | null;
  eta_seconds: number | null;
  error_message: string | null;
  note: string | null;
  created_at: string;
  finished_at: string | null;
}
