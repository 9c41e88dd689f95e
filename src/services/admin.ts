// Tenants, organizations and users: who may manage whom. The application checks the role
// hierarchy first for clear 403s; row-level security is the backstop (an id outside the
// caller's scope is simply not found).
import { createHash, randomBytes } from 'node:crypto';
import type { Sql, TxSql } from '../db/pool.js';
import { withUserTx } from '../db/tx.js';
import { canManage, canReadUser, grantableRoles, isRoleAtLeast, type Role } from '../domain/access.js';
import { DomainError, forbidden, notFound } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { audit, AUDIT_KEY, listAudit, type AuditFilter, type AuditRow } from '../repositories/audit.js';
import { cappedTotal, checkOffset, checkValues, pageOf, TOTAL_CAP, type CursorValues, type Cursors, type ListRequest, type Page, type SortKey } from '../repositories/keyset.js';
import * as tenancy from '../repositories/tenancy.js';
import * as usersRepo from '../repositories/users.js';
import * as sessionsRepo from '../repositories/sessions.js';
import { hashPassword } from './passwords.js';
import { passwordProblem, type AuthService } from './auth.js';
import type { UserCache } from './user-cache.js';

interface AdminDeps {
  sql: Sql;
  cursors: Cursors;
  auth: AuthService;
  userCache: UserCache;
}

/** A list request of the admin lists (oldest first). */
type AdminListRequest = Omit<ListRequest<'created_at'>, 'sort'>;

const isSuper = (p: Principal) => p.role === 'super_admin';
const conflictOn = (err: unknown, pattern: RegExp, field: string, message: string): never => {
  if (pattern.test((err as Error).message)) throw new DomainError('conflict', `${field}: ${message}`, [{ field, message }]);
  throw err;
};

export class AdminService {
  constructor(private readonly d: AdminDeps) {}

  // ------------------------------------------------------------------ tenants
  /** A keyset page of the tenants the caller can see (a super admin: all; others: their own). */
  async listTenants(p: Principal, q: AdminListRequest): Promise<Page<tenancy.TenantRow>> {
    return this.page('tenants', {}, q, tenancy.CREATED_KEY, (tx, fetch, after) => tenancy.listTenants(tx, { fetch, ...(after ? { after } : {}) }), p);
  }

  /**
   * Runs a keyset list as the caller: decodes the cursor, fetches one row more than the page and
   * counts up to TOTAL_CAP (these tables are small next to the predictions, so the count is the
   * capped one of keyset.ts rather than a rollup).
   */
  private async page<R extends { sort_key: CursorValues }>(
    list: string,
    filters: Record<string, unknown>,
    q: AdminListRequest,
    key: SortKey,
    fetchRows: (tx: TxSql, fetch: number, after: CursorValues | undefined) => Promise<R[]>,
    p: Principal,
  ): Promise<Page<Omit<R, 'sort_key'>>> {
    const offset = checkOffset(q.offset, q.cursor);
    const scope = { list, sort: 'created_at', filters };
    const after = q.cursor ? checkValues(await this.d.cursors.decode(scope, q.cursor), key.types) : undefined;
    const fetch = q.limit + offset + 1;
    const [rows, counted] = await withUserTx(this.d.sql, p.userId, async (tx) => {
      const rows = await fetchRows(tx, fetch, after);
      // The total: the rows of this walk from the start, up to the cap.
      const counted = !after && offset === 0 && rows.length < fetch ? rows.length : (await fetchRows(tx, TOTAL_CAP + 1, undefined)).length;
      return [rows, counted] as const;
    });
    return pageOf(this.d.cursors, scope, rows, { limit: q.limit, offset }, (r) => r.sort_key, ({ sort_key: _k, ...r }) => r, cappedTotal(counted));
  }

  async getTenant(p: Principal, id: string) {
    const t = await withUserTx(this.d.sql, p.userId, (tx) => tenancy.findTenant(tx, id));
    if (!t) throw notFound('tenant');
    return t;
  }

  async createTenant(p: Principal, input: { name: string; domain?: string | null }, ip: string | null) {
    if (!isSuper(p)) throw forbidden('only a super admin creates tenants');
    return withUserTx(this.d.sql, p.userId, async (tx) => {
      const t = await tenancy.insertTenant(tx, { name: input.name, domain: input.domain ?? null });
      await audit(tx, p, { action: 'create', table: 'tenants', rowId: t.id, after: t }, ip);
      return t;
    });
  }

  async updateTenant(p: Principal, id: string, patch: { name?: string; domain?: string | null; is_active?: boolean }, ip: string | null) {
    const result = await withUserTx(this.d.sql, p.userId, async (tx) => {
      const before = await tenancy.findTenant(tx, id);
      if (!before) throw notFound('tenant');
      if (!isSuper(p)) throw forbidden('only a super admin changes tenants');
      const after = await tenancy.updateTenant(tx, id, patch);
      await audit(tx, p, { action: 'update', table: 'tenants', rowId: id, before, after }, ip);
      return { after: after!, ended: before.is_active && patch.is_active === false ? await sessionsRepo.scopeSessionHashes(tx, { tenantId: id }) : [] };
    });
    await this.dropEnded(result.ended);
    return result.after;
  }

  /**
   * The database trigger revoked the sessions of a deactivated tenant or organization, and its
   * NOTIFY reaches every api process; this process drops the copies it can see at once, so its
   * very next request is refused whatever the notification's timing.
   */
  private async dropEnded(hashes: string[]): Promise<void> {
    if (hashes.length > 0) await this.d.auth.sessions.drop(hashes).catch(() => {});
  }

  // ------------------------------------------------------------ organizations
  /** A keyset page of the organizations the caller can see. */
  async listOrganizations(p: Principal, f: { tenantId?: string }, q: AdminListRequest): Promise<Page<tenancy.OrganizationRow>> {
    return this.page('organizations', f, q, tenancy.CREATED_KEY, (tx, fetch, after) => tenancy.listOrganizations(tx, f, { fetch, ...(after ? { after } : {}) }), p);
  }

  async getOrganization(p: Principal, id: string) {
    const o = await withUserTx(this.d.sql, p.userId, (tx) => tenancy.findOrganization(tx, id));
    if (!o) throw notFound('organization');
    return o;
  }

  async createOrganization(p: Principal, input: { tenant_id?: string; name: string; description?: string | null; max_members?: number }, ip: string | null) {
    if (!isSuper(p) && p.role !== 'tenant_admin') throw forbidden('only a tenant admin or a super admin creates organizations');
    const tenantId = input.tenant_id ?? p.tenantId;
    if (!tenantId) throw new DomainError('validation_failed', 'tenant_id: required', [{ field: 'tenant_id', message: 'required' }]);
    if (!(isSuper(p) || p.tenantId === tenantId)) {
      throw forbidden('only a tenant admin (of this tenant) or a super admin creates organizations');
    }
    return withUserTx(this.d.sql, p.userId, async (tx) => {
      if (!(await tenancy.findTenant(tx, tenantId))) throw notFound('tenant');
      const o = await tenancy.insertOrganization(tx, { tenant_id: tenantId, name: input.name, description: input.description ?? null, ...(input.max_members ? { max_members: input.max_members } : {}) });
      await audit(tx, p, { action: 'create', table: 'organizations', rowId: o.id, after: o }, ip);
      return o;
    });
  }

  /** Org admins may rename and describe their organization; activity and seats are the tenant's call. */
  async updateOrganization(p: Principal, id: string, patch: { name?: string; description?: string | null; is_active?: boolean; max_members?: number }, ip: string | null) {
    const result = await withUserTx(this.d.sql, p.userId, async (tx) => {
      const before = await tenancy.findOrganization(tx, id);
      if (!before) throw notFound('organization');
      const tenantLevel = isSuper(p) || (p.role === 'tenant_admin' && p.tenantId === before.tenant_id);
      const orgLevel = p.role === 'org_admin' && p.organizationId === id;
      if (!tenantLevel && !orgLevel) throw forbidden('not an admin of this organization');
      if (!tenantLevel && (patch.is_active !== undefined || patch.max_members !== undefined)) {
        throw forbidden('only a tenant admin changes is_active or max_members');
      }
      const after = await tenancy.updateOrganization(tx, id, patch);
      await audit(tx, p, { action: 'update', table: 'organizations', rowId: id, before, after }, ip);
      return { after: after!, ended: before.is_active && patch.is_active === false ? await sessionsRepo.scopeSessionHashes(tx, { organizationId: id }) : [] };
    });
    await this.dropEnded(result.ended);
    return result.after;
  }

  private async requireOrgAdmin(p: Principal, orgId: string, tx: TxSql) {
    const org = await tenancy.findOrganization(tx, orgId);
    if (!org) throw notFound('organization');
    const ok = isSuper(p) || (p.role === 'tenant_admin' && p.tenantId === org.tenant_id) || (p.role === 'org_admin' && p.organizationId === orgId);
    if (!ok) throw forbidden('not an admin of this organization');
    return org;
  }

  /** A new join token (shown once; only its hash is stored), replacing any earlier one. */
  async rotateJoinToken(p: Principal, orgId: string, hours: number, ip: string | null) {
    const token = randomBytes(24).toString('base64url');
    const expires = new Date(Date.now() + hours * 3600_000);
    await withUserTx(this.d.sql, p.userId, async (tx) => {
      await this.requireOrgAdmin(p, orgId, tx);
      await tenancy.setJoinToken(tx, orgId, createHash('sha256').update(token).digest('hex'), expires);
      await audit(tx, p, { action: 'rotate_join_token', table: 'organizations', rowId: orgId, after: { join_token_expires_at: expires } }, ip);
    });
    return { token, expires_at: expires };
  }

  async revokeJoinToken(p: Principal, orgId: string, ip: string | null) {
    await withUserTx(this.d.sql, p.userId, async (tx) => {
      await this.requireOrgAdmin(p, orgId, tx);
      await tenancy.setJoinToken(tx, orgId, null, null);
      await audit(tx, p, { action: 'revoke_join_token', table: 'organizations', rowId: orgId }, ip);
    });
  }

  async listWhitelist(p: Principal, orgId: string) {
    return withUserTx(this.d.sql, p.userId, async (tx) => {
      await this.requireOrgAdmin(p, orgId, tx);
      return tenancy.listWhitelist(tx, orgId);
    });
  }

  async addWhitelist(p: Principal, orgId: string, emails: string[], ip: string | null) {
    const normalised = [...new Set(emails.map((e) => e.trim().toLowerCase()))];
    return withUserTx(this.d.sql, p.userId, async (tx) => {
      await this.requireOrgAdmin(p, orgId, tx);
      const added = await tenancy.addWhitelist(tx, orgId, normalised, p.userId);
      await audit(tx, p, { action: 'whitelist_add', table: 'organization_whitelist', rowId: orgId, after: { emails: normalised } }, ip);
      return { added };
    });
  }

  async removeWhitelist(p: Principal, orgId: string, email: string, ip: string | null) {
    await withUserTx(this.d.sql, p.userId, async (tx) => {
      await this.requireOrgAdmin(p, orgId, tx);
      if (!(await tenancy.removeWhitelist(tx, orgId, email.trim().toLowerCase()))) throw notFound('whitelist entry');
      await audit(tx, p, { action: 'whitelist_remove', table: 'organization_whitelist', rowId: orgId, before: { email } }, ip);
    });
  }

  // -------------------------------------------------------------------- users
  /** A keyset page of the audit log: a tenant admin reads its tenant's, a super admin everything. */
  async listAudit(p: Principal, f: AuditFilter, q: AdminListRequest): Promise<Page<AuditRow>> {
    if (p.role !== 'super_admin' && p.role !== 'tenant_admin') throw forbidden('only tenant admins and super admins read the audit log');
    if (p.role === 'tenant_admin' && !p.tenantId) throw forbidden('a tenant admin without a tenant has no audit log');
    const offset = checkOffset(q.offset, q.cursor);
    const scope = { list: 'audit', sort: '-created_at', filters: f as Record<string, unknown> };
    const after = q.cursor ? checkValues(await this.d.cursors.decode(scope, q.cursor), AUDIT_KEY.types) : undefined;
    const { rows, counted } = await withUserTx(this.d.sql, p.userId, (tx) =>
      listAudit(tx, f, { fetch: q.limit + offset + 1, ...(after ? { after } : {}), ...(p.role === 'tenant_admin' ? { tenantId: p.tenantId! } : {}) }),
    );
    return pageOf(this.d.cursors, scope, rows, { limit: q.limit, offset }, (r) => r.sort_key, ({ sort_key: _k, ...r }) => r, cappedTotal(counted));
  }

  /** A keyset page of the users the caller can see, walked within the caller's tenant or organization. */
  async listUsers(p: Principal, f: { organizationId?: string; tenantId?: string; role?: Role }, q: AdminListRequest): Promise<Page<usersRepo.UserRow>> {
    const within =
      p.role === 'super_admin' ? {}
      : p.role === 'tenant_admin' && p.tenantId ? { tenantId: p.tenantId }
      : (p.role === 'org_admin' || p.role === 'org_member') && p.organizationId ? { organizationId: p.organizationId }
      : { userId: p.userId };
    return this.page('users', f, q, usersRepo.USER_KEY, (tx, fetch, after) => usersRepo.listUsers(tx, f, { fetch, ...(after ? { after } : {}), within }), p);
  }

  /** Cache-aside, served only after the same read rule the users policy enforces. */
  async getUser(p: Principal, id: string): Promise<usersRepo.UserRow> {
    const u = await this.d.userCache.get(id, () => withUserTx(this.d.sql, p.userId, (tx) => usersRepo.findUser(tx, id)), p.userId);
    if (!u || !canReadUser(p, { id: u.id, tenantId: u.tenant_id, organizationId: u.organization_id })) throw notFound('user');
    return u;
  }

  async createUser(
    p: Principal,
    input: { email: string; username: string; password: string; first_name?: string | null; last_name?: string | null; role: Role; organization_id?: string | null; tenant_id?: string | null },
    ip: string | null,
  ) {
    if (!grantableRoles(p.role).includes(input.role)) throw forbidden(`a ${p.role} cannot create a ${input.role}`);
    const problem = passwordProblem(input.password, input.email.split('@')[0], input.username);
    if (problem) throw new DomainError('validation_failed', `password: ${problem}`, [{ field: 'password', message: problem }]);
    const hash = await hashPassword(input.password);
    try {
      return await withUserTx(this.d.sql, p.userId, async (tx) => {
        let orgId = input.organization_id ?? (p.role === 'org_admin' ? p.organizationId : null);
        let tenantId = input.tenant_id ?? p.tenantId;
        if (orgId) {
          const org = await tenancy.findOrganization(tx, orgId);
          if (!org) throw notFound('organization');
          tenantId = org.tenant_id;
        }
        if (['org_member', 'org_admin'].includes(input.role) && !orgId) {
          throw new DomainError('validation_failed', 'organization_id: required for this role', [{ field: 'organization_id', message: 'required for this role' }]);
        }
        if (input.role === 'user') orgId = orgId ?? null;
        if (!canManage(p, { role: input.role, tenantId: tenantId ?? null, organizationId: orgId ?? null })) throw forbidden('outside your scope');
        const user = await usersRepo.insertUser(tx, {
          tenant_id: tenantId ?? null,
          organization_id: orgId ?? null,
          email: input.email.toLowerCase(),
          username: input.username,
          first_name: input.first_name ?? null,
          last_name: input.last_name ?? null,
          role: input.role,
          is_verified: true,
        });
        await usersRepo.setPassword(tx, user.id, hash);
        await audit(tx, p, { action: 'create', table: 'users', rowId: user.id, after: user }, ip);
        return user;
      });
    } catch (err) {
      if (err instanceof DomainError) throw err;
      if (/users_org_tenant|tenant must be the tenant/.test((err as Error).message)) throw forbidden('organization is not in that tenant');
      if (/row-level security/.test((err as Error).message)) throw forbidden('outside your scope');
      conflictOn(err, /idx_users_email_lower|users_email_key/, 'email', 'already registered');
      return conflictOn(err, /idx_users_username_lower|users_username_key/, 'username', 'already taken');
    }
  }

  async updateUser(
    p: Principal,
    id: string,
    patch: { first_name?: string | null; last_name?: string | null; role?: Role; organization_id?: string | null; is_active?: boolean },
    ip: string | null,
  ) {
    const after = await withUserTx(this.d.sql, p.userId, async (tx) => {
      const before = await usersRepo.findUser(tx, id);
      if (!before) throw notFound('user');
      const self = before.id === p.userId;
      const privileged = patch.role !== undefined || patch.organization_id !== undefined || patch.is_active !== undefined;
      const target = { role: before.role, tenantId: before.tenant_id, organizationId: before.organization_id };
      if (self && privileged) throw forbidden('you cannot change your own role, organization or status');
      if (!self && !canManage(p, target)) throw forbidden('you cannot manage this user');
      const next: Parameters<typeof usersRepo.updateUser>[2] = {};
      if (patch.first_name !== undefined) next.first_name = patch.first_name;
      if (patch.last_name !== undefined) next.last_name = patch.last_name;
      if (patch.is_active !== undefined) next.is_active = patch.is_active;
      if (patch.role !== undefined) {
        if (!grantableRoles(p.role).includes(patch.role)) throw forbidden(`a ${p.role} cannot grant ${patch.role}`);
        next.role = patch.role;
      }
      if (patch.organization_id !== undefined) {
        if (patch.organization_id === null) {
          next.organization_id = null;
          next.tenant_id = isRoleAtLeast(p.role, 'tenant_admin') ? before.tenant_id : null;
          if (patch.role === undefined && ['org_member', 'org_admin'].includes(before.role)) next.role = 'user';
        } else {
          const org = await tenancy.findOrganization(tx, patch.organization_id);
          if (!org) throw notFound('organization');
          next.organization_id = org.id;
          next.tenant_id = org.tenant_id;
        }
      }
      const resulting = {
        role: next.role ?? before.role,
        tenantId: next.tenant_id !== undefined ? next.tenant_id : before.tenant_id,
        organizationId: next.organization_id !== undefined ? next.organization_id : before.organization_id,
      };
      // Removing a member from the organization is the org admin's to do; anything else must
      // stay within what the actor manages.
      const removal = p.role === 'org_admin' && resulting.organizationId === null && resulting.role === 'user';
      if (!self && !removal && !canManage(p, resulting)) throw forbidden('the result would be outside your scope');
      if (['org_member', 'org_admin'].includes(resulting.role) && !resulting.organizationId) {
        throw new DomainError('validation_failed', 'organization_id: required for this role', [{ field: 'organization_id', message: 'required for this role' }]);
      }
      // Mirrors the database's role guard (migration 0043) to say it in the API's words.
      const scopeChanges = next.role !== undefined || next.organization_id !== undefined || next.tenant_id !== undefined;
      if (scopeChanges && resulting.role !== 'user' && !before.is_verified && (resulting.role !== before.role || resulting.organizationId !== before.organization_id || resulting.tenantId !== before.tenant_id)) {
        throw new DomainError('conflict', `this user has not verified the e-mail address ${before.email} yet; an unverified account cannot hold the role ${resulting.role}`);
      }
      const updated = await usersRepo.updateUser(tx, id, next);
      await audit(tx, p, { action: patch.is_active === false ? 'deactivate' : 'update', table: 'users', rowId: id, before, after: updated }, ip);
      return updated!;
    });
    await this.d.auth.forgetUser(id, p.userId);
    return after;
  }

  deactivateUser(p: Principal, id: string, ip: string | null) {
    return this.updateUser(p, id, { is_active: false }, ip);
  }
}
