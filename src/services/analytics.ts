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
import { HISTOGRAM_EDGES, quantileFromBuckets, rollupSummary, topRisk, yearSectorRollup } from '../repositories/rollups.js';
import { REFERENCE_RATING_SCALE, type RatingGrade } from '../risk/implied-rating.js';
import { scopesOf, usePlans } from '../repositories/keyset.js';

import type { ModelKind } from '../risk/index.js';
import { caughtUpTo, primaryLsn } from '../db/replicas.js';

export type Period = 'day' | 'week' | 'month' | 'year';

interface AnalyticsDeps {
  sql: Sql;
  /** Read replicas (DATABASE_READ_URLS); queries run there as app_user, RLS applies. */
  readSql?: () => Sql | null;
  cache: CacheAside;
  redis: Redis;
  log: Logger;
  /** IMPLIED_RATING_SCALE (default: the reference models' calibration). */
  ratingScale?: readonly RatingGrade[];
}

interface ByYear {
  type: ModelKind;
  years: Array<{ reporting_year: string; count: number; average_probability: number; sectors: Array<{ sector: string; count: number; average_probability: number }> }>;
}


export interface Summary {
  type: ModelKind;
  period: Period;
  from: string;
  to: string;
  total: number;
  average_probability: number | null;
  /** Estimated from the rollups' probability buckets: within 6 % of the exact value (see quantileFromBuckets). */
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
      // Plain INCRs, not MULTI: each counter only has to move, not move with the others, and the
      // auto-pipelined commands still leave in one write. The MULTI/EXEC wrapper cost a tenth of
      // the API's CPU per create (profile in docs/benchmarks.md).
      await Promise.all(genKeys.map((k) => this.d.redis.incr(k)));
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

  /** The rating scale PDs are read against (GET /analytics/rating-scale). */
  get ratingScale(): readonly RatingGrade[] {
    return this.d.ratingScale ?? REFERENCE_RATING_SCALE;
  }

  /** Average PD by reporting year and sector in the caller's scope, from the rollups. */
  async byYear(p: Principal, kind: ModelKind): Promise<ByYear> {
    const rows = await withUserTx(this.d.sql, p.userId, async (tx) => yearSectorRollup(tx, kind, p.role === 'super_admin' ? null : await scopesOf(tx)));
    const years = new Map<string, ByYear['years'][number] & { sum: number }>();
    for (const r of rows) {
      const y = years.get(r.reporting_year) ?? { reporting_year: r.reporting_year, count: 0, average_probability: 0, sectors: [], sum: 0 };
      y.count += r.n;
      y.sum += r.sum_micros;
      y.sectors.push({ sector: r.sector, count: r.n, average_probability: r.sum_micros / r.n / 1e6 });
      years.set(r.reporting_year, y);
    }
    return {
      type: kind,
      years: [...years.values()].map(({ sum, ...y }) => ({ ...y, average_probability: sum / y.count / 1e6, sectors: y.sectors.sort((a, b) => b.average_probability - a.average_probability) })),
    };
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
        // A replica answers only when it has replayed everything the primary had committed when
        // this request began, so a summary read there is as exact as one read on the primary
        // (and never cached stale under a fresh generation). Otherwise the primary answers.
        const lsn = await primaryLsn(this.d.sql);
        const answer = await withUserTx(replica, p.userId, async (tx) => {
          return (await caughtUpTo(tx, lsn)) ? this.query(tx, p, q, w) : null;
        });
        if (answer) return answer;
      } catch (err) {
        this.d.log.warn({ err: (err as Error).message }, 'analytics on the replica failed; using the primary');
      }
    }
    return withUserTx(this.d.sql, p.userId, (tx) => this.query(tx, p, q, w));
  }

  /**
   * From the rollups (migration 0040), never the raw predictions: counts, sums and buckets over
   * the window at the grain of its trend, plus the top companies from a small indexed query.
   */
  private async query(tx: TxSql, p: Principal, q: { period: Period; type: ModelKind }, w: ReturnType<typeof periodWindow>): Promise<Summary> {
    // Rollup reads have one right plan, a nested loop over the scopes with primary-key range
    // scans; left to itself on estimates the planner hash-joins a bitmap of every scope's rows in
    // the window (measured: 590 ms against 10 ms for a tenant admin at a million predictions).
    const [, scopes] = await Promise.all([usePlans(tx, 'walk'), p.role === 'super_admin' ? null : scopesOf(tx)]);
    const grain = q.period === 'year' ? 'year' : q.period === 'month' ? 'month' : 'day';
    const r = await rollupSummary(tx, q.type, { from: w.from, to: w.to, grain, trendGrain: w.bucket }, scopes);
    // The rollup's counts choose the top-risk query's plan.
    const top = await topRisk(tx, q.type, w, scopes, { window: r.total, scope: r.scopeTotal });
    const hist = HISTOGRAM_EDGES.slice(0, -1).map((from, i) => ({ from, to: HISTOGRAM_EDGES[i + 1]!, count: 0 }));
    for (const b of r.buckets) hist[Math.min(hist.length - 1, Math.floor(b.bucket / 16))]!.count += b.n;
    const round = (x: number | null) => (x === null ? null : Math.round(x * 1e6) / 1e6);
    return {
      type: q.type,
      period: q.period,
      from: w.from.toISOString(),
      to: w.to.toISOString(),
      total: r.total,
      average_probability: r.total > 0 ? round(r.sumMicros / r.total / 1e6) : null,
      p95_probability: round(quantileFromBuckets(r.buckets, 0.95)),
      by_risk_level: r.byRisk,
      by_sector: r.bySector,
      by_access_level: r.byAccess,
      histogram: hist,
      top_risk: top,
      trend: r.trend.map((t) => ({ bucket: new Date(t.period).toISOString(), count: t.n, average_probability: round(t.sumMicros / t.n / 1e6)! })),
      generated_at: new Date().toISOString(),
    };
  }
}
