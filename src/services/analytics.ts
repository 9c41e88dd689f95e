import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logging.js';
import type { Sql, TxSql } from '../db/pool.js';
import { withUserTx } from '../db/tx.js';
import type { AccessLevel } from '../domain/access.js';
import { DomainError } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { analyticsGen, analyticsGensFor, keys, TTL } from '../cache/keys.js';
import type { CacheAside } from '../cache/cache-aside.js';
import { FINAL, TABLE } from '../repositories/predictions.js';
import type { ModelKind } from '../risk/index.js';

export type Period = 'day' | 'week' | 'month' | 'year';

export interface AnalyticsDeps {
  sql: Sql;
  /** Read replicas (DATABASE_READ_URLS); queries run there as app_user, RLS applies. */
  readSql?: () => Sql | null;
  cache: CacheAside;
  redis: Redis;
  log: Logger;
}

export const HISTOGRAM_EDGES = [0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1];

export interface Summary {
  type: ModelKind;
  period: Period;
  from: string;
  to: string;
  total: number;
  average_probability: number | null;
  p95_probability: number | null;
  by_risk_level: Record<string, number>;
  by_sector: Record<string, number>;
  by_access_level: Record<string, number>;
  histogram: Array<{ from: number; to: number; count: number }>;
  top_risk: Array<{ company_id: string; symbol: string; name: string; sector: string | null; probability: number; risk_level: string; reporting_year: string }>;
  trend: Array<{ bucket: string; count: number; average_probability: number }>;
  generated_at: string;
}

/** The UTC window of the period containing `date` (weeks start on Monday, as ISO 8601). */
export function periodWindow(period: Period, date: string): { from: Date; to: Date; bucket: 'hour' | 'day' | 'month' } {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(date + 'T00:00:00Z'))) {
    throw new DomainError('validation_failed', 'date: must be a date YYYY-MM-DD', [{ field: 'date', message: 'must be YYYY-MM-DD' }]);
  }
  const d = new Date(date + 'T00:00:00Z');
  if (d.toISOString().slice(0, 10) !== date) throw new DomainError('validation_failed', 'date: not a real calendar date', [{ field: 'date', message: 'not a real calendar date' }]);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  switch (period) {
    case 'day':
      return { from: d, to: new Date(d.getTime() + 86_400_000), bucket: 'hour' };
    case 'week': {
      const monday = new Date(d.getTime() - ((d.getUTCDay() + 6) % 7) * 86_400_000);
      return { from: monday, to: new Date(monday.getTime() + 7 * 86_400_000), bucket: 'day' };
    }
    case 'month':
      return { from: new Date(Date.UTC(y, m, 1)), to: new Date(Date.UTC(y, m + 1, 1)), bucket: 'day' };
    case 'year':
      return { from: new Date(Date.UTC(y, 0, 1)), to: new Date(Date.UTC(y + 1, 0, 1)), bucket: 'month' };
  }
}

const GEN = analyticsGen;

export class AnalyticsService {
  private owed = new Set<string>();

  constructor(private readonly d: AnalyticsDeps) {
    d.redis.on('ready', () => void this.replay());
  }

  /**
   * Generation counters stand for "everything cached for this scope": a write bumps its scope's
   * counter (and the global one admins read), and a summary's cache key carries the counters of
   * every scope its caller sees, so a write makes exactly those summaries unreachable.
   */
  private gensFor(p: Principal, orgs: string[]): string[] {
    if (p.role === 'super_admin' || p.role === 'tenant_admin') return [GEN.all];
    return [GEN.system, GEN.user(p.userId), ...orgs.map(GEN.org)];
  }

  async invalidateScope(row: { access_level: AccessLevel; organization_id: string | null; created_by: string | null }): Promise<void> {
    await this.bump(analyticsGensFor(row));
  }

  private async bump(genKeys: string[]): Promise<void> {
    try {
      if (this.d.redis.status !== 'ready') throw new Error(`redis is ${this.d.redis.status}`);
      const m = this.d.redis.multi();
      for (const k of genKeys) m.incr(k);
      await m.exec();
    } catch (err) {
      for (const k of genKeys) this.owed.add(k);
      this.d.log.warn({ err: (err as Error).message }, 'analytics invalidation deferred until Redis is back');
    }
  }

  private async replay(): Promise<void> {
    if (this.owed.size === 0) return;
    const owed = [...this.owed];
    this.owed.clear();
    await this.bump(owed);
  }

  async summary(p: Principal, q: { period: Period; date: string; type: ModelKind }): Promise<Summary> {
    const w = periodWindow(q.period, q.date);
    const orgs = p.organizationId && (p.role === 'org_member' || p.role === 'org_admin') ? [p.organizationId] : [];
    const genKeys = this.gensFor(p, orgs);
    let gens: Array<string | null> = [];
    try {
      if (this.owed.size === 0 && this.d.redis.status === 'ready') gens = await this.d.redis.mget(...genKeys);
      else gens = genKeys.map(() => 'owed:' + Date.now());
    } catch {
      gens = genKeys.map(() => 'down:' + Date.now());
    }
    const scope = createHash('sha256')
      .update([p.userId, p.role, p.tenantId, p.organizationId, ...genKeys, ...gens].join('|'))
      .digest('hex')
      .slice(0, 24);
    const key = keys.analytics(q.period, q.date, `${q.type}:${scope}`);
    const result = await this.d.cache.get<Summary>('analytics', key, TTL.analytics, () => this.compute(p, q, w), p.userId);
    return result!;
  }

  private async compute(p: Principal, q: { period: Period; type: ModelKind }, w: ReturnType<typeof periodWindow>): Promise<Summary> {
    const replica = this.d.readSql?.() ?? null;
    if (replica) {
      try {
        return await withUserTx(replica, p.userId, (tx) => this.query(tx, p, q, w));
      } catch (err) {
        this.d.log.warn({ err: (err as Error).message }, 'analytics on the replica failed; using the primary');
      }
    }
    return withUserTx(this.d.sql, p.userId, (tx) => this.query(tx, p, q, w));
  }

  /**
   * One statement. Shared rows (organization and system) are read through the spec's partial
   * analytics index on created_at; the caller's personal rows through the creator index; row-level
   * security filters both.
   */
  private async query(tx: TxSql, p: Principal, q: { period: Period; type: ModelKind }, w: ReturnType<typeof periodWindow>): Promise<Summary> {
    const table = tx(TABLE[q.type]);
    const prob = tx('p.' + FINAL[q.type]);
    const personal =
      p.role === 'super_admin'
        ? tx`p.access_level = 'personal'`
        : tx`p.access_level = 'personal' and p.created_by = ${p.userId}`;
    const edges = HISTOGRAM_EDGES;
    const [r] = await tx<Array<Record<string, unknown>>>`
      with v as materialized (
        select p.company_id, p.risk_level, p.access_level, p.created_at, p.reporting_year, ${prob}::float8 as prob
        from ${table} p
        where p.created_at >= ${w.from} and p.created_at < ${w.to} and p.access_level in ('organization', 'system')
        union all
        select p.company_id, p.risk_level, p.access_level, p.created_at, p.reporting_year, ${prob}::float8 as prob
        from ${table} p
        where p.created_at >= ${w.from} and p.created_at < ${w.to} and ${personal}
      ),
      vc as materialized (
        select v.*, c.symbol, c.name, c.sector from v join companies c on c.id = v.company_id
      )
      select
        (select count(*)::int from vc) as total,
        (select avg(prob) from vc) as average_probability,
        (select percentile_cont(0.95) within group (order by prob) from vc) as p95_probability,
        (select coalesce(jsonb_object_agg(risk_level, n), '{}') from (select risk_level, count(*)::int n from vc group by 1) x) as by_risk_level,
        (select coalesce(jsonb_object_agg(coalesce(sector, 'Unknown'), n), '{}') from (select sector, count(*)::int n from vc group by 1) x) as by_sector,
        (select coalesce(jsonb_object_agg(access_level, n), '{}') from (select access_level, count(*)::int n from vc group by 1) x) as by_access_level,
        (select coalesce(jsonb_agg(jsonb_build_object('bucket', b, 'count', n) order by b), '[]')
           from (select width_bucket(prob, ${edges}::float8[]) b, count(*)::int n from vc group by 1) x) as histogram,
        (select coalesce(jsonb_agg(t order by t.probability desc, t.symbol), '[]') from (
           select * from (
             select distinct on (company_id) company_id, symbol, name, sector, prob as probability, risk_level, reporting_year
             from vc order by company_id, prob desc) d
           order by probability desc, symbol limit 10) t) as top_risk,
        (select coalesce(jsonb_agg(jsonb_build_object('bucket', b, 'count', n, 'average_probability', a) order by b), '[]')
           from (select date_trunc(${w.bucket}, created_at) b, count(*)::int n, avg(prob) a from vc group by 1) x) as trend`;
    const hist = HISTOGRAM_EDGES.slice(0, -1).map((from, i) => ({ from, to: HISTOGRAM_EDGES[i + 1]!, count: 0 }));
    for (const h of r!.histogram as Array<{ bucket: number; count: number }>) {
      // width_bucket: 1..n-1 inside, n for exactly 1.0 (the last edge), 0 below.
      const i = Math.min(Math.max(h.bucket, 1), hist.length) - 1;
      hist[i]!.count += h.count;
    }
    const round = (x: unknown) => (x === null || x === undefined ? null : Math.round(Number(x) * 1e6) / 1e6);
    return {
      type: q.type,
      period: q.period,
      from: w.from.toISOString(),
      to: w.to.toISOString(),
      total: r!.total as number,
      average_probability: round(r!.average_probability),
      p95_probability: round(r!.p95_probability),
      by_risk_level: r!.by_risk_level as Record<string, number>,
      by_sector: r!.by_sector as Record<string, number>,
      by_access_level: r!.by_access_level as Record<string, number>,
      histogram: hist,
      top_risk: (r!.top_risk as Summary['top_risk']).map((t) => ({ ...t, probability: round(t.probability)! })),
      trend: (r!.trend as Array<{ bucket: string; count: number; average_probability: number }>).map((t) => ({
        bucket: new Date(t.bucket.endsWith('Z') || t.bucket.includes('+') ? t.bucket : t.bucket + 'Z').toISOString(),
        count: t.count,
        average_probability: round(t.average_probability)!,
      })),
      generated_at: new Date().toISOString(),
    };
  }
}
