import type { Sql, TxSql } from '../db/pool.js';
import { withUserTx } from '../db/tx.js';
import { canModifyScoped, canReadScoped, type AccessLevel } from '../domain/access.js';
import { DomainError, forbidden, notFound } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { keys, TTL } from '../cache/keys.js';
import type { CacheAside } from '../cache/cache-aside.js';
import { audit } from '../repositories/audit.js';
import { checkOffset, checkValues, pageOf, scopesOf, usePlans, type Cursors, type ListRequest, type Page } from '../repositories/keyset.js';
import * as repo from '../repositories/companies.js';
import type { Patch } from '../repositories/tenancy.js';
import { normalizeCompanyInput, resolveScope, type CompanyInput } from './prediction-compute.js';

export interface CompanyDeps {
  sql: Sql;
  cursors: Cursors;
  cache: CacheAside;
}

export type CompanyView = Omit<repo.CompanyRow, 'created_at' | 'updated_at'> & { created_at: string; updated_at: string };

const toView = (c: repo.CompanyRow): CompanyView => ({
  ...c,
  created_at: new Date(c.created_at).toISOString(),
  updated_at: new Date(c.updated_at).toISOString(),
});

export function fieldErrors(errors: Array<{ field: string; message: string }>): DomainError {
  const first = errors[0]!;
  return new DomainError('validation_failed', `${first.field}: ${first.message}`, errors);
}

export class CompanyService {
  constructor(private readonly d: CompanyDeps) {}

  /**
   * Finds the company with this symbol in the caller's scope, or creates it there. Used by
   * single predictions given a company by symbol (bulk uploads do the same set-based).
   */
  async findOrCreateInScope(tx: TxSql, p: Principal, input: CompanyInput, level: AccessLevel | undefined, ip: string | null): Promise<{ company: repo.CompanyRow; created: boolean }> {
    const scope = resolveScope(p, level);
    if (!scope.ok) throw new DomainError('forbidden', `${scope.errors[0]!.field}: ${scope.errors[0]!.message}`, scope.errors);
    const existing = await repo.findCompanyInScope(tx, input.symbol, scope.value);
    if (existing) return { company: existing, created: false };
    const company = await repo.insertCompany(tx, { ...input, ...scope.value });
    await audit(tx, p, { action: 'create', table: 'companies', rowId: company.id, after: company }, ip);
    return { company, created: true };
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
