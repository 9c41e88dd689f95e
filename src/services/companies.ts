import type { Sql, TxSql } from '../db/pool.js';
import { withUserTx } from '../db/tx.js';
import { canAddPredictions, canModifyScoped, canReadScoped, type AccessLevel } from '../domain/access.js';
import { scopeName } from '../domain/wording.js';
import * as predictionsRepo from '../repositories/predictions.js';
import { DomainError, forbidden, notFound } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { keys, TTL } from '../cache/keys.js';
import type { CacheAside } from '../cache/cache-aside.js';
import { audit } from '../repositories/audit.js';
import { checkOffset, checkValues, pageOf, scopesOf, usePlans, type Cursors, type ListRequest, type Page } from '../repositories/keyset.js';
import * as repo from '../repositories/companies.js';
import type { Patch } from '../repositories/tenancy.js';
import { normalizeCompanyInput, resolveScope, type CompanyInput, type Scope } from './prediction-compute.js';

interface CompanyDeps {
  sql: Sql;
  cursors: Cursors;
  cache: CacheAside;
  /** Summaries of the scopes a merge or purge changes are dropped. */
  analytics?: { invalidateScope(row: { access_level: AccessLevel; organization_id: string | null; created_by: string | null }): Promise<void> };
}

export type CompanyView = Omit<repo.CompanyRow, 'created_at' | 'updated_at'> & { created_at: string; updated_at: string };

interface SectorContextView {
  company_id: string;
  kind: 'annual' | 'quarterly';
  sector: string | null;
  probability: number | null;
  peers: number;
  percentile: number | null;
  sector_median_probability: number | null;
}

const toView = (c: repo.CompanyRow): CompanyView => ({
  ...c,
  created_at: new Date(c.created_at).toISOString(),
  updated_at: new Date(c.updated_at).toISOString(),
});

function presentChoice(p: Principal, c: repo.CompanyRow): CompanyChoice {
  return { ...toView(c), can_add_predictions: canAddPredictions(p, c) };
}

export function fieldErrors(errors: Array<{ field: string; message: string }>): DomainError {
  const first = errors[0]!;
  return new DomainError('validation_failed', `${first.field}: ${first.message}`, errors);
}

const inScope = (c: repo.CompanyRow, s: Scope) =>
  c.access_level === s.access_level && (s.access_level !== 'organization' || c.organization_id === s.organization_id) && (s.access_level !== 'personal' || c.created_by === s.created_by);

/** Where an analyst's own work lands first among same-symbol companies: their default scope, then shared, then own, then everyone's. */
const PREFERENCE: Record<AccessLevel, number> = { organization: 1, personal: 2, system: 3 };

type CompanyChoice = CompanyView & { can_add_predictions: boolean };

export class CompanyService {
  constructor(private readonly d: CompanyDeps) {}

  /**
   * The company a prediction given by symbol belongs to. A symbol resolves to the company the
   * caller already sees and may add predictions to (in the requested scope when one is given);
   * only with no same-symbol company in sight is one created silently. A second company with a
   * symbol the caller already sees needs `new_company: true`: otherwise 409 lists the choices.
   */
  async resolveForPrediction(tx: TxSql, p: Principal, input: CompanyInput, level: AccessLevel | undefined, newCompany: boolean, ip: string | null): Promise<repo.CompanyRow> {
    const scope = resolveScope(p, level);
    if (!scope.ok) throw new DomainError('forbidden', `${scope.errors[0]!.field}: ${scope.errors[0]!.message}`, scope.errors);
    const scopes = p.role === 'super_admin' ? null : await scopesOf(tx);
    const visible = (await repo.findVisibleBySymbol(tx, input.symbol, scopes)).filter((c) => c.is_active);
    const exact = visible.find((c) => inScope(c, scope.value));
    if (exact) return exact;
    if (!newCompany) {
      const addable = visible.filter((c) => canAddPredictions(p, c));
      if (level === undefined && addable.length > 0) return [...addable].sort((a, b) => PREFERENCE[a.access_level] - PREFERENCE[b.access_level])[0]!;
      if (visible.length > 0) {
        const where = visible.map((c) => `visible to ${scopeName(c.access_level)}`).join(', ');
        throw new DomainError(
          'conflict',
          `${input.symbol} already exists (${where}). Add the prediction to ${visible.length === 1 ? 'that company' : 'one of them'} by its id, or ask for a separate ${input.symbol} visible to ${scopeName(scope.value.access_level)} with new_company: true.`,
          { reason: 'company_choice_required', symbol: input.symbol, new_company_scope: scope.value.access_level, candidates: visible.map((c) => ({ ...presentChoice(p, c) })) },
        );
      }
    }
    const company = await repo.insertCompany(tx, { ...input, ...scope.value });
    await audit(tx, p, { action: 'create', table: 'companies', rowId: company.id, after: company }, ip);
    return company;
  }

  /** Every visible company with this symbol and their predictions, each marked with its scope. */
  async bySymbol(p: Principal, rawSymbol: string): Promise<{ symbol: string; companies: CompanyChoice[]; annual: predictionsRepo.PredictionRow[]; quarterly: predictionsRepo.PredictionRow[] }> {
    const symbol = rawSymbol.trim().toUpperCase();
    return withUserTx(this.d.sql, p.userId, async (tx) => {
      const scopes = p.role === 'super_admin' ? null : await scopesOf(tx);
      const companies = await repo.findVisibleBySymbol(tx, symbol, scopes);
      const ids = companies.map((c) => c.id);
      const [annual, quarterly] = await Promise.all([predictionsRepo.predictionsOfCompanies(tx, 'annual', ids), predictionsRepo.predictionsOfCompanies(tx, 'quarterly', ids)]);
      return { symbol, companies: companies.map((c) => presentChoice(p, c)), annual, quarterly };
    });
  }

  /**
   * Merges `fromId` into `intoId`: the predictions move (taking the target's scope and sector),
   * the source company is deleted, and the audit log keeps both rows and what moved. Refused
   * when both have a prediction for the same period, or when some prediction is not the caller's
   * to move: nothing is written then.
   */
  async merge(p: Principal, fromId: string, intoId: string, ip: string | null): Promise<{ company: CompanyView; moved: { annual: number; quarterly: number } }> {
    if (fromId === intoId) throw new DomainError('validation_failed', 'into: a company cannot be merged into itself', [{ field: 'into', message: 'must be another company' }]);
    const out = await withUserTx(this.d.sql, p.userId, async (tx) => {
      const from = await repo.findCompany(tx, fromId);
      const into = await repo.findCompany(tx, intoId);
      if (!from) throw notFound('company');
      if (!into) throw new DomainError('not_found', 'The company to merge into was not found (or is not visible to you).', [{ field: 'into', message: 'not found' }]);
      if (!canModifyScoped(p, from)) throw forbidden('Only the company\'s creator or an admin of its scope can merge it away.');
      if (!canAddPredictions(p, into)) throw forbidden(`You cannot add predictions to ${into.symbol} (visible to ${scopeName(into.access_level)}), so you cannot merge into it.`);
      const overlap = await repo.overlappingPeriods(tx, fromId, intoId);
      if (overlap.length > 0) {
        throw new DomainError('conflict', `Both companies have predictions for ${overlap.join(', ')}. Delete or keep one of each first, then merge.`, { reason: 'overlapping_periods', periods: overlap });
      }
      const counts = await repo.predictionCounts(tx, fromId);
      const moved = await repo.movePredictions(tx, fromId, intoId);
      if (moved.annual !== counts.annual || moved.quarterly !== counts.quarterly) {
        throw forbidden('Some predictions of this company were made by others, and you cannot move them: an admin of its scope can merge it.');
      }
      await audit(tx, p, { action: 'merge', table: 'companies', rowId: intoId, before: { merged: from, into }, after: { into: await repo.findCompany(tx, intoId), moved } }, ip);
      await audit(tx, p, { action: 'delete', table: 'companies', rowId: fromId, before: from, after: { merged_into: intoId } }, ip);
      if (!(await repo.deleteCompany(tx, fromId))) throw forbidden('You cannot delete this company.');
      return { company: toView((await repo.findCompany(tx, intoId))!), moved, from };
    });
    await this.d.analytics?.invalidateScope(out.from);
    await this.d.analytics?.invalidateScope(out.company);
    await this.d.cache.invalidate('company', keys.company(fromId));
    await this.d.cache.invalidate('company', keys.company(intoId));
    return { company: out.company, moved: out.moved };
  }

  /** Deletes a company entered by mistake, with its predictions (each kept in the audit log). */
  async purge(p: Principal, id: string, ip: string | null): Promise<{ deleted: { annual: number; quarterly: number } }> {
    const deleted = await withUserTx(this.d.sql, p.userId, async (tx) => {
      const before = await repo.findCompany(tx, id);
      if (!before) throw notFound('company');
      if (!canModifyScoped(p, before)) throw forbidden('Only the company\'s creator or an admin of its scope can delete it.');
      const counts = await repo.predictionCounts(tx, id);
      const [annual, quarterly] = await Promise.all([predictionsRepo.predictionsOfCompanies(tx, 'annual', [id], counts.annual + 1), predictionsRepo.predictionsOfCompanies(tx, 'quarterly', [id], counts.quarterly + 1)]);
      for (const row of annual) await audit(tx, p, { action: 'delete', table: 'annual_predictions', rowId: row.id, before: row }, ip);
      for (const row of quarterly) await audit(tx, p, { action: 'delete', table: 'quarterly_predictions', rowId: row.id, before: row }, ip);
      const r = await repo.deletePredictionsOf(tx, id);
      // Row-level security skips rows the caller may not delete: then nothing at all is deleted.
      if (r.annual !== counts.annual || r.quarterly !== counts.quarterly) {
        throw forbidden('Some predictions of this company were made by others, and you cannot delete them: an admin of its scope can.');
      }
      if (!(await repo.deleteCompany(tx, id))) throw forbidden('You cannot delete this company.');
      await audit(tx, p, { action: 'delete', table: 'companies', rowId: id, before }, ip);
      return { annual: r.annual, quarterly: r.quarterly, ids: [...annual, ...quarterly].map((x) => x.id), before };
    });
    await this.d.analytics?.invalidateScope(deleted.before);
    await this.d.cache.invalidate('company', keys.company(id));
    for (const pid of deleted.ids) await this.d.cache.invalidate('prediction', keys.prediction(pid));
    return { deleted: { annual: deleted.annual, quarterly: deleted.quarterly } };
  }

  async create(p: Principal, body: Record<string, unknown>, ip: string | null): Promise<CompanyView> {
    const input = normalizeCompanyInput(body, (n) => n);
    if (!input.ok) throw fieldErrors(input.errors);
    const scope = resolveScope(p, body.access_level as AccessLevel | undefined);
    if (!scope.ok) throw new DomainError('forbidden', `${scope.errors[0]!.field}: ${scope.errors[0]!.message}`, scope.errors);
    return withUserTx(this.d.sql, p.userId, async (tx) => {
      const existing = await repo.findCompanyInScope(tx, input.value.symbol, scope.value);
      if (existing) {
        throw new DomainError('conflict', `symbol: ${input.value.symbol} already exists in this scope`, { field: 'symbol', existing_id: existing.id });
      }
      const c = await repo.insertCompany(tx, { ...input.value, ...scope.value });
      await audit(tx, p, { action: 'create', table: 'companies', rowId: c.id, after: c }, ip);
      return toView(c);
    });
  }

  async get(p: Principal, id: string): Promise<CompanyView> {
    const c = await this.d.cache.get<CompanyView>('company', keys.company(id), TTL.company, async () => {
      const row = await withUserTx(this.d.sql, p.userId, (tx) => repo.findCompany(tx, id));
      return row ? toView(row) : null;
    }, p.userId);
    // A row another caller put in the cache is served only to someone who could read it.
    if (!c || !canReadScoped(p, c)) throw notFound('company');
    return c;
  }

  /**
   * Where the company's latest PD sits in its sector, among the companies of that sector the
   * caller can see: its percentile rank (the share of peers with a lower PD, counting ties as
   * half, in [0, 100]) and the sector's median PD. Null figures when the company has no sector or
   * no PD of this kind.
   */
  async sectorContext(p: Principal, id: string, kind: 'annual' | 'quarterly'): Promise<SectorContextView> {
    const c = await this.get(p, id);
    if (!c.sector) return { company_id: id, kind, sector: null, probability: null, peers: 0, percentile: null, sector_median_probability: null };
    const r = await withUserTx(this.d.sql, p.userId, (tx) => repo.sectorContext(tx, id, c.sector!, kind));
    const percentile = r.micros === null || r.peers === 0 ? null : Math.round(((r.below + r.same / 2) / r.peers) * 1000) / 10;
    return {
      company_id: id,
      kind,
      sector: c.sector,
      probability: r.micros === null ? null : r.micros / 1e6,
      peers: r.peers,
      percentile,
      sector_median_probability: r.medianMicros === null ? null : Math.round(r.medianMicros * 10) / 1e7,
    };
  }

  /** A keyset page of the companies the caller can see. */
  async list(p: Principal, f: repo.CompanyFilter, q: ListRequest<repo.CompanySort>): Promise<Page<CompanyView>> {
    const offset = checkOffset(q.offset, q.cursor);
    const scope = { list: 'companies', sort: q.sort, filters: f as Record<string, unknown> };
    const key = repo.companySortKey(q.sort);
    const after = q.cursor ? checkValues(await this.d.cursors.decode(scope, q.cursor), key.types) : undefined;
    const [rows, total] = await withUserTx(this.d.sql, p.userId, async (tx) => {
      const superAdmin = p.role === 'super_admin';
      const [, scopes] = await Promise.all([usePlans(tx, repo.companyPlans(f)), superAdmin ? null : scopesOf(tx, f.accessLevel)]);
      return Promise.all([
        repo.listCompanies(tx, f, { sort: q.sort, fetch: q.limit + offset + 1, ...(after ? { after } : {}), scopes, ...(superAdmin ? {} : { tenantId: p.tenantId }) }),
        repo.countCompanies(tx, f, scopes),
      ]);
    });
    return pageOf(this.d.cursors, scope, rows, { limit: q.limit, offset }, (r) => r.sort_key, ({ sort_key: _k, ...r }) => toView(r), total);
  }

  async update(p: Principal, id: string, body: Record<string, unknown>, ip: string | null): Promise<CompanyView> {
    const errors: Array<{ field: string; message: string }> = [];
    const patch: Patch = {};
    if ('name' in body) {
      const n = normalizeCompanyInput({ symbol: 'X', name: body.name }, (f) => f);
      if (!n.ok) errors.push(...n.errors);
      else patch.name = n.value.name;
    }
    for (const f of ['sector', 'country', 'exchange', 'market_cap'] as const) {
      if (!(f in body)) continue;
      const n = normalizeCompanyInput({ symbol: 'X', name: 'x', [f]: body[f] }, (k) => k);
      if (!n.ok) errors.push(...n.errors);
      else patch[f] = n.value[f];
    }
    if ('is_active' in body) patch.is_active = body.is_active as boolean;
    if (errors.length > 0) throw fieldErrors(errors);
    const view = await withUserTx(this.d.sql, p.userId, async (tx) => {
      const before = await repo.findCompany(tx, id);
      if (!before) throw notFound('company');
      if (!canModifyScoped(p, before)) throw forbidden('only the creator or an admin of its scope changes this company');
      const after = await repo.updateCompany(tx, id, patch);
      await audit(tx, p, { action: patch.is_active === false ? 'deactivate' : 'update', table: 'companies', rowId: id, before, after }, ip);
      return toView(after!);
    });
    await this.d.cache.invalidate('company', keys.company(id));
    return view;
  }

  /** Soft delete: a company with predictions is never removed through the API. */
  remove(p: Principal, id: string, ip: string | null): Promise<CompanyView> {
    return this.update(p, id, { is_active: false }, ip);
  }
}
