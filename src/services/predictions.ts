import type { Sql, TxSql } from '../db/pool.js';
import { REFERENCE_RATING_SCALE, type RatingGrade } from '../risk/implied-rating.js';
import { withUserTx } from '../db/tx.js';
import { canModifyScoped, canReadScoped, type AccessLevel } from '../domain/access.js';
import { DomainError, forbidden, notFound } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { keys, TTL } from '../cache/keys.js';
import type { CacheAside } from '../cache/cache-aside.js';
import { audit } from '../repositories/audit.js';
import { checkOffset, checkValues, pageOf, scopesOf, usePlans, type Cursors, type ListRequest, type Page } from '../repositories/keyset.js';
import * as companies from '../repositories/companies.js';
import * as repo from '../repositories/predictions.js';
import type { AnnualRatios, ModelKind, QuarterlyRatios, RiskEngine, Explanation } from '../risk/index.js';
import { metrics } from '../ops/monitoring/metrics.js';
import { computePrediction, normalizeCompanyInput, requiredRatios, type ComputedPrediction, type MinRatios } from './prediction-compute.js';
import { aKind, periodText, scopeName } from '../domain/wording.js';
import { fieldsOf } from '../risk/fields.js';
import { fieldErrors, type CompanyService } from './companies.js';
import type { AnalyticsService } from './analytics.js';

interface PredictionDeps {
  sql: Sql;
  cursors: Cursors;
  cache: CacheAside;
  engine: RiskEngine;
  companies: CompanyService;
  analytics?: AnalyticsService;
  /** PREDICTION_MIN_RATIOS (default "majority"). */
  minRatios?: MinRatios;
}

/** What the cache holds and presenters read: the row with dates as ISO strings. */
export type PredictionView = Omit<repo.PredictionRow, 'created_at' | 'updated_at'> & { created_at: string; updated_at: string };

const toView = ({ sort_key: _k, ...r }: repo.PredictionRow & { sort_key?: unknown }): PredictionView => ({
  ...r,
  created_at: new Date(r.created_at).toISOString(),
  updated_at: new Date(r.updated_at).toISOString(),
});

function writeOf(c: ComputedPrediction, companyId: string, createdBy: string): repo.PredictionWrite {
  const values: Record<string, number | string | null> = { ...(c.ratios as unknown as Record<string, number | null>), ...(c.outputs as unknown as Record<string, number | string>) };
  return {
    company_id: companyId,
    created_by: createdBy,
    reporting_year: c.reporting_year,
    ...(c.kind === 'quarterly' ? { reporting_quarter: c.reporting_quarter } : {}),
    values,
    model_name: c.model.name,
    model_version: c.model.version,
  };
}

function duplicatePeriod(kind: ModelKind, symbol: string, year: string, quarter: string | undefined, existingId: string | undefined): DomainError {
  return new DomainError('conflict', `${symbol} already has ${aKind(kind)} prediction for ${periodText(year, quarter)}. Replace it to change it.`, {
    existing_id: existingId,
    replace: 'send the same request with ?upsert=true',
  });
}

const levelMismatch = (level: AccessLevel) =>
  new DomainError('validation_failed', `This company is visible to ${scopeName(level)}, and so are its predictions: leave "visible to" as it is.`, [{ field: 'access_level', message: `must be ${level}, the company's own` }]);

const cannotAdd = (level: AccessLevel) =>
  forbidden(`You cannot add predictions to this company (visible to ${scopeName(level)}): you do not manage it. Create the company in your own scope instead.`);

/** The min-ratios errors in one sentence with the ratios' labels; other errors keep the first's field: message. */
function computeErrors(kind: ModelKind, errors: Array<{ field: string; message: string }>, minRatios: MinRatios | undefined): DomainError {
  const missing = errors.filter((e) => e.message.startsWith('is not reported:'));
  if (missing.length === 0 || missing.length !== errors.length) return fieldErrors(errors);
  const labels = fieldsOf(kind).filter((f) => missing.some((e) => e.field === f.name)).map((f) => f.label);
  const need = requiredRatios(kind, minRatios);
  const total = fieldsOf(kind).length;
  return new DomainError('validation_failed', `Too few ratios for ${aKind(kind)} prediction: at least ${need} of ${total} must be reported. Not reported: ${labels.join(', ')}.`, errors);
}

export class PredictionService {
  constructor(private readonly d: PredictionDeps) {}

  private compute(kind: ModelKind, raw: Record<string, unknown>, checkPresent = true): ComputedPrediction {
    const end = metrics.modelInference.startTimer({ model: kind });
    const r = computePrediction(this.d.engine, kind, raw, !checkPresent ? { minRatios: 0 } : this.d.minRatios !== undefined ? { minRatios: this.d.minRatios } : {});
    end();
    if (!r.ok) throw computeErrors(kind, r.errors, this.d.minRatios);
    return r.value;
  }

  /** The scale implied ratings are read on (IMPLIED_RATING_SCALE; the reference calibration by default). */
  get ratingScale(): readonly RatingGrade[] {
    return this.d.analytics?.ratingScale ?? REFERENCE_RATING_SCALE;
  }

  explain(kind: ModelKind, values: Record<string, unknown>): Explanation | undefined {
    const ratios: Record<string, number | null> = {};
    for (const f of repo.RATIO_FIELDS[kind]) ratios[f] = (values[f] as number | null) ?? null;
    const e = kind === 'annual'
      ? this.d.engine.predictAnnual(ratios as unknown as AnnualRatios, { explain: true }).explanation
      : this.d.engine.predictQuarterly(ratios as unknown as QuarterlyRatios, { explain: true }).explanation;
    // A missing ratio still moves the PD (the models' own "missing" treatment): say so in words
    // an analyst reads, with that real effect, never as if a value had been entered.
    if (e) for (const c of e.contributions) if (c.value === null) c.bin = 'not reported';
    return e;
  }

  private async resolveCompany(tx: TxSql, p: Principal, body: Record<string, unknown>, ip: string | null) {
    if (typeof body.company_id === 'string') {
      const c = await companies.findCompany(tx, body.company_id);
      if (!c) throw new DomainError('not_found', 'The company was not found (it may have been deleted, or is not visible to you).', [{ field: 'company_id', message: 'not found' }]);
      if (!c.is_active) throw new DomainError('validation_failed', 'The company has been deactivated: it takes no new predictions.', [{ field: 'company_id', message: 'company is deactivated' }]);
      return c;
    }
    const input = normalizeCompanyInput((body.company ?? {}) as Record<string, unknown>);
    if (!input.ok) throw fieldErrors(input.errors);
    return this.d.companies.resolveForPrediction(tx, p, input.value, body.access_level as AccessLevel | undefined, body.new_company === true, ip);
  }

  /**
   * Creates the prediction for a company and period. The spec's UNIQUE key allows one per
   * company and period in a scope: a repeat is 409 with the existing id, or with upsert the
   * prediction is replaced and the old one kept in audit_logs.
   */
  async create(kind: ModelKind, p: Principal, body: Record<string, unknown>, opts: { upsert: boolean }, ip: string | null): Promise<{ view: PredictionView; created: boolean }> {
    const computed = this.compute(kind, body);
    if (typeof body.company_id === 'string' && !opts.upsert) return this.createForCompany(kind, p, body.company_id, body.access_level as AccessLevel | undefined, computed, ip);
    const result = await withUserTx(this.d.sql, p.userId, async (tx) => {
      const company = await this.resolveCompany(tx, p, body, ip);
      if (body.company_id !== undefined && body.access_level !== undefined && body.access_level !== company.access_level) {
        throw levelMismatch(company.access_level);
      }
      if (!canModifyScoped(p, company) && !(company.access_level === 'organization' && company.organization_id === p.organizationId)) {
        throw cannotAdd(company.access_level);
      }
      const quarter = computed.kind === 'quarterly' ? computed.reporting_quarter : undefined;
      const write = writeOf(computed, company.id, p.userId);
      // The common case in one statement: insert (unless the period is taken) and audit it.
      const inserted = await repo.insertPredictionAudited(tx, kind, write, company, { userId: p.userId, tenantId: p.tenantId, organizationId: p.organizationId, ip });
      if (inserted) return { row: inserted, created: true };
      const existing = (await repo.conflictingId(tx, kind, company.id, computed.reporting_year, quarter))!;
      if (!opts.upsert) {
        throw duplicatePeriod(kind, company.symbol, computed.reporting_year, quarter, existing);
      }
      const before = await repo.findPrediction(tx, kind, existing);
      if (!before || !canModifyScoped(p, before)) throw forbidden('Only the prediction\'s creator or an admin of its scope can replace it.');
      await repo.replacePrediction(tx, kind, existing, write);
      const after = (await repo.findPrediction(tx, kind, existing))!;
      await audit(tx, p, { action: 'upsert', table: repo.TABLE[kind], rowId: existing, before, after }, ip);
      return { row: after, created: false };
    });
    if (result.created) await this.d.analytics?.invalidateScope(result.row);
    else await this.afterWrite(result.row);
    return { view: toView(result.row), created: result.created };
  }

  /**
   * The analyst's usual create, an existing company by id and a new period, in one statement
   * (repo.createForCompany); the same checks and messages as the transaction in create().
   */
  private async createForCompany(kind: ModelKind, p: Principal, companyId: string, level: AccessLevel | undefined, computed: ComputedPrediction, ip: string | null) {
    const r = await repo.createForCompany(this.d.sql, kind, writeOf(computed, companyId, p.userId), level ?? null, ip);
    switch (r.outcome) {
      case 'created':
        // A new id cannot be in the cache: only the summaries of its scope are stale.
        await this.d.analytics?.invalidateScope(r.row);
        return { view: toView(r.row), created: true };
      case 'company_not_found':
        throw new DomainError('not_found', 'The company was not found (it may have been deleted, or is not visible to you).', [{ field: 'company_id', message: 'not found' }]);
      case 'company_inactive':
        throw new DomainError('validation_failed', 'The company has been deactivated: it takes no new predictions.', [{ field: 'company_id', message: 'company is deactivated' }]);
      case 'level_mismatch':
        throw levelMismatch(r.level);
      case 'forbidden':
        throw cannotAdd(r.level);
      case 'conflict': {
        const quarter = computed.kind === 'quarterly' ? computed.reporting_quarter : undefined;
        throw duplicatePeriod(kind, r.company.symbol, computed.reporting_year, quarter, r.existing_id);
      }
    }
  }

  async get(kind: ModelKind, p: Principal, id: string): Promise<PredictionView> {
    const v = await this.d.cache.get<PredictionView>('prediction', keys.prediction(id), TTL.prediction, async () => {
      const row = await withUserTx(this.d.sql, p.userId, (tx) => repo.findPrediction(tx, kind, id));
      return row ? toView(row) : null;
    }, p.userId);
    // Annual and quarterly ids share the key family; a cached row of the other kind is not found.
    if (!v || v.kind !== kind || !canReadScoped(p, v)) throw notFound('prediction');
    return v;
  }

  /** A keyset page of the predictions the caller can see (see repositories/keyset.ts). */
  async list(kind: ModelKind, p: Principal, f: repo.PredictionFilter, q: ListRequest<repo.PredictionSort>): Promise<Page<PredictionView>> {
    const offset = checkOffset(q.offset, q.cursor);
    const scope = { list: `predictions.${kind}`, sort: q.sort, filters: f as Record<string, unknown> };
    const spec = repo.predictionSortSpec(kind, q.sort);
    const after = q.cursor ? checkValues(await this.d.cursors.decode(scope, q.cursor), spec.types) : undefined;
    const fetch = q.limit + offset + 1;
    const { rows, total } = await withUserTx(this.d.sql, p.userId, async (tx) => {
      const superAdmin = p.role === 'super_admin';
      const profile = repo.predictionPlans(f, q.sort);
      const [, scopes] = await Promise.all([usePlans(tx, profile), superAdmin ? null : scopesOf(tx, f.accessLevel)]);
      const page = { sort: q.sort, fetch, ...(after ? { after } : {}), scopes, ...(superAdmin ? {} : { tenantId: p.tenantId }) };
      if (profile === 'walk' && (f.year || f.sector)) {
        // The exact count first: it says whether the filter is rare enough to read its matches
        // directly, and an empty match needs no list at all.
        const total = await repo.countPredictions(tx, kind, f, scopes);
        if (total.total === 0) return { rows: [], total };
        const rare = total.scopeTotal !== undefined && repo.isRare(total.total, total.scopeTotal, fetch);
        if (rare) await usePlans(tx, 'custom');
        return { rows: await repo.listPredictions(tx, kind, f, { ...page, rare }), total };
      }
      // Both statements go out together on the transaction's connection (one round trip).
      const [rows, total] = await Promise.all([repo.listPredictions(tx, kind, f, page), repo.countPredictions(tx, kind, f, scopes)]);
      return { rows, total };
    });
    const { scopeTotal: _t, ...counted } = total as typeof total & { scopeTotal?: number };
    return pageOf(this.d.cursors, scope, rows, { limit: q.limit, offset }, (r) => r.sort_key, (r) => toView(r), counted);
  }

  /** Changing ratios (or the period) re-runs the models. */
  async update(kind: ModelKind, p: Principal, id: string, body: Record<string, unknown>, ip: string | null): Promise<PredictionView> {
    const row = await withUserTx(this.d.sql, p.userId, async (tx) => {
      const before = await repo.findPrediction(tx, kind, id);
      if (!before) throw notFound('prediction');
      if (!canModifyScoped(p, before)) throw forbidden('Only the prediction\'s creator or an admin of its scope can change it.');
      const merged: Record<string, unknown> = { reporting_year: before.reporting_year, ...(kind === 'quarterly' ? { reporting_quarter: before.reporting_quarter } : {}) };
      for (const f of repo.RATIO_FIELDS[kind]) merged[f] = before.values[f];
      Object.assign(merged, body);
      // Rows stored before the minimum existed keep working for patches that leave their ratios alone.
      const touchesRatios = repo.RATIO_FIELDS[kind].some((f) => f in body);
      const computed = this.compute(kind, merged, touchesRatios);
      try {
        await repo.replacePrediction(tx, kind, id, writeOf(computed, before.company_id, before.created_by ?? p.userId));
      } catch (err) {
        if (/_key|unique/i.test((err as Error).message)) throw new DomainError('conflict', 'Another prediction of this company already covers that period.');
        throw err;
      }
      const after = (await repo.findPrediction(tx, kind, id))!;
      await audit(tx, p, { action: 'update', table: repo.TABLE[kind], rowId: id, before, after }, ip);
      return after;
    });
    await this.afterWrite(row);
    return toView(row);
  }

  async remove(kind: ModelKind, p: Principal, id: string, ip: string | null): Promise<void> {
    const before = await withUserTx(this.d.sql, p.userId, async (tx) => {
      const b = await repo.findPrediction(tx, kind, id);
      if (!b) throw notFound('prediction');
      if (!canModifyScoped(p, b)) throw forbidden('Only the prediction\'s creator or an admin of its scope can delete it.');
      await repo.deletePrediction(tx, kind, id);
      await audit(tx, p, { action: 'delete', table: repo.TABLE[kind], rowId: id, before: b }, ip);
      return b;
    });
    await this.afterWrite(before);
  }

  private async afterWrite(row: repo.PredictionRow): Promise<void> {
    await this.d.cache.invalidate('prediction', keys.prediction(row.id));
    await this.d.analytics?.invalidateScope(row);
  }
}
