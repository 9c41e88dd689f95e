-- Row-level security and grants: the access model of the architecture guide.
--
-- Every tenant-owned table has RLS enabled, with policies for app_user keyed on
-- current_setting('app.current_user_id', true), which withUserTx() sets with
-- set_config(..., true) (transaction-local: safe behind a transaction-mode pooler).
-- A missing or empty setting sees nothing.
--
-- DEVIATION from the spec's two sample policies (company_org_policy, prediction_access_policy):
-- they key only on the user's organization, which would hide personal and system rows and
-- let any organization member rewrite any organization row. The policies below implement the
-- guide's personal / organization / system levels, tenant admins and super admins.

-- ---------------------------------------------------------------------------------------------
-- Caller context. withUserTx() runs `SELECT app_set_user(id)`: it sets app.current_user_id and,
-- from `users` (read as owner: SECURITY DEFINER, fixed search_path), the caller's role, tenant,
-- organization, open access levels and readable organizations, all transaction-local
-- (set_config(..., true)).
--
-- The policies read that context through small SQL functions that PostgreSQL inlines (not
-- SECURITY DEFINER, no SET clause): per row they cost a current_setting(), and the planner can
-- fold them to estimate selectivity, so a member's list over 1,000,000 predictions is a
-- BitmapOr of index scans. Measured on that data: SECURITY DEFINER look-ups evaluated per row
-- took 4.7 s per count(*); InitPlan-wrapped calls hid the values from the planner (sequential
-- scan, 0.44 s); this design takes milliseconds.
--
-- The context is trusted only while app.ctx_uid equals app.current_user_id, so setting
-- app.current_user_id alone (or nothing) sees nothing.
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION app_set_user(uid uuid) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
DECLARE u record; orgs uuid[];
BEGIN
  PERFORM set_config('app.current_user_id', coalesce(uid::text, ''), true);
  SELECT id, role, tenant_id, organization_id INTO u FROM public.users WHERE id = uid AND is_active;
  IF NOT FOUND THEN
    PERFORM set_config('app.ctx_uid', '', true);
    PERFORM set_config('app.ctx_role', '', true);
    PERFORM set_config('app.ctx_tenant', '', true);
    PERFORM set_config('app.ctx_org', '', true);
    PERFORM set_config('app.ctx_levels', '{}', true);
    PERFORM set_config('app.ctx_orgs', '{}', true);
    RETURN;
  END IF;
  SELECT coalesce(array_agg(o.id), ARRAY[]::uuid[]) INTO orgs FROM public.organizations o
   WHERE (u.role IN ('org_member', 'org_admin') AND o.id = u.organization_id)
      OR (u.role = 'tenant_admin' AND o.tenant_id = u.tenant_id);
  PERFORM set_config('app.ctx_uid', u.id::text, true);
  PERFORM set_config('app.ctx_role', u.role, true);
  PERFORM set_config('app.ctx_tenant', coalesce(u.tenant_id::text, ''), true);
  PERFORM set_config('app.ctx_org', coalesce(u.organization_id::text, ''), true);
  PERFORM set_config('app.ctx_levels', CASE WHEN u.role = 'super_admin' THEN '{system,organization,personal}' ELSE '{system}' END, true);
  PERFORM set_config('app.ctx_orgs', orgs::text, true);
END $$;

-- After a custom setting has been set once on a connection it reads '' rather than NULL.
CREATE FUNCTION app_uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT nullif(pg_catalog.current_setting('app.current_user_id', true), '')::uuid
$$;

CREATE FUNCTION app_ctx_valid() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT coalesce(pg_catalog.current_setting('app.ctx_uid', true), '') <> ''
     AND pg_catalog.current_setting('app.ctx_uid', true) = pg_catalog.current_setting('app.current_user_id', true)
$$;

CREATE FUNCTION app_role() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN public.app_ctx_valid() THEN pg_catalog.current_setting('app.ctx_role', true) END
$$;

CREATE FUNCTION app_tenant() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN public.app_ctx_valid() THEN nullif(pg_catalog.current_setting('app.ctx_tenant', true), '')::uuid END
$$;

CREATE FUNCTION app_org() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN public.app_ctx_valid() THEN nullif(pg_catalog.current_setting('app.ctx_org', true), '')::uuid END
$$;

CREATE FUNCTION app_is_super() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT public.app_ctx_valid() AND pg_catalog.current_setting('app.ctx_role', true) = 'super_admin'
$$;

-- Access levels the caller sees without an ownership test: system rows for every active user,
-- everything for a super admin, nothing without a user.
CREATE FUNCTION app_open_levels() RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN public.app_ctx_valid() THEN pg_catalog.current_setting('app.ctx_levels', true)::text[] ELSE '{}'::text[] END
$$;

-- Organizations whose organization-level rows the caller reads: its own (as a member or org
-- admin) and, for a tenant admin, every organization of its tenant.
CREATE FUNCTION app_readable_orgs() RETURNS uuid[] LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN public.app_ctx_valid() THEN pg_catalog.current_setting('app.ctx_orgs', true)::uuid[] ELSE '{}'::uuid[] END
$$;

-- May the caller create a row at this level in this organization, owned by itself?
CREATE FUNCTION app_can_create(level text, org uuid, creator uuid) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
  SELECT coalesce((
    SELECT creator = u.id AND CASE level
      WHEN 'personal' THEN true
      WHEN 'organization' THEN org IS NOT NULL AND (
           (u.role IN ('org_member', 'org_admin') AND org = u.organization_id)
        OR (u.role = 'tenant_admin' AND EXISTS (SELECT 1 FROM public.organizations o WHERE o.id = org AND o.tenant_id = u.tenant_id))
        OR u.role = 'super_admin')
      WHEN 'system' THEN u.role = 'super_admin'
      ELSE false END
    FROM public.users u WHERE u.id = public.app_uid() AND u.is_active), false)
$$;

-- May the caller change or delete an existing row? Its creator (within a level its role still
-- allows), the organization's admin, the tenant's admin, a super admin.
CREATE FUNCTION app_can_modify(level text, org uuid, creator uuid) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
  SELECT coalesce((
    SELECT u.role = 'super_admin' OR CASE level
      WHEN 'personal' THEN creator = u.id
      WHEN 'organization' THEN org IS NOT NULL AND (
           (u.role IN ('org_member', 'org_admin') AND org = u.organization_id AND (creator = u.id OR u.role = 'org_admin'))
        OR (u.role = 'tenant_admin' AND EXISTS (SELECT 1 FROM public.organizations o WHERE o.id = org AND o.tenant_id = u.tenant_id)))
      ELSE false END
    FROM public.users u WHERE u.id = public.app_uid() AND u.is_active), false)
$$;

-- May the caller manage a user holding this role in this tenant/organization? Nobody manages a
-- role at or above their own, except that a super admin manages everyone.
CREATE FUNCTION app_can_manage(target_role text, target_tenant uuid, target_org uuid) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
  SELECT coalesce((
    SELECT CASE u.role
      WHEN 'super_admin' THEN true
      WHEN 'tenant_admin' THEN target_tenant = u.tenant_id AND target_role IN ('user', 'org_member', 'org_admin')
      WHEN 'org_admin' THEN target_org = u.organization_id AND target_role IN ('user', 'org_member')
      ELSE false END
    FROM public.users u WHERE u.id = public.app_uid() AND u.is_active), false)
$$;

CREATE FUNCTION app_can_manage_user(target uuid) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
  SELECT coalesce((SELECT public.app_can_manage(t.role, t.tenant_id, t.organization_id) FROM public.users t WHERE t.id = target), false)
$$;

-- Login and session checks happen before there is a current user, so they go through these
-- narrow functions instead of a policy that would open `users` to anonymous reads.
CREATE FUNCTION app_auth_lookup(login text)
RETURNS TABLE (user_id uuid, password_hash text, is_active boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT u.id, c.password_hash, u.is_active
  FROM public.users u LEFT JOIN public.user_credentials c ON c.user_id = u.id
  WHERE lower(u.email) = lower(login) OR lower(u.username) = lower(login)
  LIMIT 1
$$;

CREATE FUNCTION app_session_lookup(hash text)
RETURNS TABLE (session_id uuid, user_id uuid, expires_at timestamp, revoked_at timestamp, last_activity timestamp, user_active boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT s.id, s.user_id, s.expires_at, s.revoked_at, s.last_activity, u.is_active
  FROM public.user_sessions s JOIN public.users u ON u.id = s.user_id
  WHERE s.token_hash = hash
$$;

-- ---------------------------------------------------------------------------------------------
-- Policies
-- ---------------------------------------------------------------------------------------------

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenants_read ON tenants FOR SELECT TO app_user
  USING (app_is_super() OR id = app_tenant());
CREATE POLICY tenants_write ON tenants FOR ALL TO app_user
  USING (app_is_super()) WITH CHECK (app_is_super());

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
-- (The tenant-admin arm is spelled out rather than read from app_readable_orgs(), which is
-- fixed when the transaction starts: an organization created in this transaction is visible.)
CREATE POLICY organizations_read ON organizations FOR SELECT TO app_user
  USING (app_is_super() OR id = app_org() OR (app_role() = 'tenant_admin' AND tenant_id = app_tenant()));
CREATE POLICY organizations_insert ON organizations FOR INSERT TO app_user
  WITH CHECK (app_is_super() OR (app_role() = 'tenant_admin' AND tenant_id = app_tenant()));
CREATE POLICY organizations_update ON organizations FOR UPDATE TO app_user
  USING (app_is_super() OR (app_role() = 'tenant_admin' AND tenant_id = app_tenant()) OR (app_role() = 'org_admin' AND id = app_org()))
  WITH CHECK (app_is_super() OR (app_role() = 'tenant_admin' AND tenant_id = app_tenant()) OR (app_role() = 'org_admin' AND id = app_org() AND tenant_id = app_tenant()));
CREATE POLICY organizations_delete ON organizations FOR DELETE TO app_user
  USING (app_is_super() OR (app_role() = 'tenant_admin' AND tenant_id = app_tenant()));

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_read ON users FOR SELECT TO app_user
  USING (id = app_uid() OR app_is_super()
         OR (tenant_id = app_tenant() AND app_role() = 'tenant_admin')
         OR (organization_id = app_org() AND app_role() IN ('org_member', 'org_admin')));
-- Self-registration inserts exactly one plain `user` with no tenant; anything else needs a
-- manager of the new row's role and scope.
CREATE POLICY users_insert ON users FOR INSERT TO app_user
  WITH CHECK ((id = app_uid() AND role = 'user' AND tenant_id IS NULL AND organization_id IS NULL)
              OR app_can_manage(role, tenant_id, organization_id));
-- A user edits itself but cannot change its own role or scope (app_role() etc. hold the values
-- read when the transaction began); a manager keeps the new row within what it may manage.
CREATE POLICY users_update ON users FOR UPDATE TO app_user
  USING (id = app_uid() OR app_can_manage(role, tenant_id, organization_id))
  WITH CHECK ((id = app_uid() AND role = app_role() AND tenant_id IS NOT DISTINCT FROM app_tenant()
               AND organization_id IS NOT DISTINCT FROM app_org())
              OR app_can_manage(role, tenant_id, organization_id)
              OR (app_role() = 'org_admin' AND role = 'user' AND organization_id IS NULL));
CREATE POLICY users_delete ON users FOR DELETE TO app_user
  USING (app_can_manage(role, tenant_id, organization_id) AND app_role() IN ('super_admin', 'tenant_admin'));

ALTER TABLE user_credentials ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_credentials_own ON user_credentials FOR ALL TO app_user
  USING (user_id = app_uid() OR app_can_manage_user(user_id))
  WITH CHECK (user_id = app_uid() OR app_can_manage_user(user_id));

ALTER TABLE user_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_sessions_read ON user_sessions FOR SELECT TO app_user
  USING (user_id = app_uid() OR app_can_manage_user(user_id));
CREATE POLICY user_sessions_insert ON user_sessions FOR INSERT TO app_user
  WITH CHECK (user_id = app_uid());
CREATE POLICY user_sessions_update ON user_sessions FOR UPDATE TO app_user
  USING (user_id = app_uid() OR app_can_manage_user(user_id))
  WITH CHECK (user_id = app_uid() OR app_can_manage_user(user_id));
CREATE POLICY user_sessions_delete ON user_sessions FOR DELETE TO app_user
  USING (user_id = app_uid() OR app_can_manage_user(user_id));

ALTER TABLE organization_whitelist ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_whitelist_admin ON organization_whitelist FOR ALL TO app_user
  USING (app_is_super()
         OR (app_role() = 'org_admin' AND organization_id = app_org())
         OR (app_role() = 'tenant_admin' AND organization_id = ANY (app_readable_orgs())))
  WITH CHECK (app_is_super()
         OR (app_role() = 'org_admin' AND organization_id = app_org())
         OR (app_role() = 'tenant_admin' AND organization_id = ANY (app_readable_orgs())));

-- Companies and predictions share one shape of policy. The read policy is three indexable arms
-- (open levels / own personal rows / readable organizations) so that a user's list query is a
-- BitmapOr over idx_*_access_level, idx_*_creator and idx_*_org rather than a sequential scan.
ALTER TABLE companies ENABLE ROW LEVEL SECURITY;
CREATE POLICY company_org_policy ON companies FOR SELECT TO app_user
  USING (access_level = ANY (app_open_levels())
         OR (created_by = app_uid() AND access_level = 'personal')
         OR (organization_id = ANY (app_readable_orgs()) AND access_level = 'organization'));
CREATE POLICY companies_insert ON companies FOR INSERT TO app_user
  WITH CHECK (app_can_create(access_level, organization_id, created_by));
CREATE POLICY companies_update ON companies FOR UPDATE TO app_user
  USING (app_can_modify(access_level, organization_id, created_by))
  WITH CHECK (app_can_modify(access_level, organization_id, created_by));
CREATE POLICY companies_delete ON companies FOR DELETE TO app_user
  USING (app_can_modify(access_level, organization_id, created_by));

ALTER TABLE annual_predictions ENABLE ROW LEVEL SECURITY;
CREATE POLICY prediction_access_policy ON annual_predictions FOR SELECT TO app_user
  USING (access_level = ANY (app_open_levels())
         OR (created_by = app_uid() AND access_level = 'personal')
         OR (organization_id = ANY (app_readable_orgs()) AND access_level = 'organization'));
CREATE POLICY annual_predictions_insert ON annual_predictions FOR INSERT TO app_user
  WITH CHECK (app_can_create(access_level, organization_id, created_by));
CREATE POLICY annual_predictions_update ON annual_predictions FOR UPDATE TO app_user
  USING (app_can_modify(access_level, organization_id, created_by))
  WITH CHECK (app_can_modify(access_level, organization_id, created_by));
CREATE POLICY annual_predictions_delete ON annual_predictions FOR DELETE TO app_user
  USING (app_can_modify(access_level, organization_id, created_by));

ALTER TABLE quarterly_predictions ENABLE ROW LEVEL SECURITY;
CREATE POLICY quarterly_prediction_access_policy ON quarterly_predictions FOR SELECT TO app_user
  USING (access_level = ANY (app_open_levels())
         OR (created_by = app_uid() AND access_level = 'personal')
         OR (organization_id = ANY (app_readable_orgs()) AND access_level = 'organization'));
CREATE POLICY quarterly_predictions_insert ON quarterly_predictions FOR INSERT TO app_user
  WITH CHECK (app_can_create(access_level, organization_id, created_by));
CREATE POLICY quarterly_predictions_update ON quarterly_predictions FOR UPDATE TO app_user
  USING (app_can_modify(access_level, organization_id, created_by))
  WITH CHECK (app_can_modify(access_level, organization_id, created_by));
CREATE POLICY quarterly_predictions_delete ON quarterly_predictions FOR DELETE TO app_user
  USING (app_can_modify(access_level, organization_id, created_by));

ALTER TABLE bulk_upload_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY bulk_upload_jobs_read ON bulk_upload_jobs FOR SELECT TO app_user
  USING (user_id = app_uid() OR app_can_manage_user(user_id));
CREATE POLICY bulk_upload_jobs_insert ON bulk_upload_jobs FOR INSERT TO app_user
  WITH CHECK (user_id = app_uid());
CREATE POLICY bulk_upload_jobs_update ON bulk_upload_jobs FOR UPDATE TO app_user
  USING (user_id = app_uid() OR app_can_manage_user(user_id))
  WITH CHECK (user_id = app_uid() OR app_can_manage_user(user_id));
CREATE POLICY bulk_upload_jobs_delete ON bulk_upload_jobs FOR DELETE TO app_user
  USING (user_id = app_uid() OR app_can_manage_user(user_id));

-- Errors follow their job (the subquery is itself filtered by bulk_upload_jobs' policies).
ALTER TABLE bulk_upload_errors ENABLE ROW LEVEL SECURITY;
CREATE POLICY bulk_upload_errors_job ON bulk_upload_errors FOR ALL TO app_user
  USING (job_id IN (SELECT id FROM bulk_upload_jobs))
  WITH CHECK (job_id IN (SELECT id FROM bulk_upload_jobs));

-- Insert-only for the app (no UPDATE/DELETE grant below); only admins read, within their tenant.
ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_logs_insert ON audit_logs FOR INSERT TO app_user
  WITH CHECK (user_id = app_uid());
CREATE POLICY audit_logs_admin_read ON audit_logs FOR SELECT TO app_user
  USING (app_is_super() OR (app_role() = 'tenant_admin' AND tenant_id = app_tenant()));

-- Reporting roles read everything they are granted (without a policy they would see nothing).
-- Credentials are not granted to them at all (see below).
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['tenants', 'organizations', 'users', 'companies', 'annual_predictions',
    'quarterly_predictions', 'user_sessions', 'bulk_upload_jobs', 'bulk_upload_errors', 'audit_logs',
    'organization_whitelist'] LOOP
    EXECUTE format('CREATE POLICY %I ON %I FOR SELECT TO readonly_user, analytics_user USING (true)', t || '_reporting_read', t);
  END LOOP;
  -- The maintenance role cleans up sessions, audit logs and old predictions across tenants.
  FOREACH t IN ARRAY ARRAY['user_sessions', 'audit_logs', 'annual_predictions', 'quarterly_predictions', 'companies'] LOOP
    EXECUTE format('CREATE POLICY %I ON %I FOR ALL TO maintenance_user USING (true) WITH CHECK (true)', t || '_maintenance', t);
  END LOOP;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Grants (the spec's "Database Users & Permissions"), plus default privileges so tables added
-- by later migrations are covered without anyone remembering to grant.
-- ---------------------------------------------------------------------------------------------
DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO app_user, readonly_user, analytics_user, monitoring_user, maintenance_user', current_database());
END $$;

GRANT USAGE ON SCHEMA public TO app_user, readonly_user, analytics_user, maintenance_user, monitoring_user;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app_user;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app_user;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO readonly_user;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO analytics_user;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO analytics_user;

ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO app_user;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO app_user;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO readonly_user, analytics_user;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO analytics_user;

-- What app_user must not touch: the migrations table, archive tables, raw credentials for
-- reporting roles, and audit rows after they are written.
REVOKE ALL ON schema_migrations FROM app_user, readonly_user, analytics_user;
REVOKE ALL ON annual_predictions_archive, quarterly_predictions_archive FROM app_user;
REVOKE UPDATE, DELETE ON audit_logs FROM app_user;
REVOKE ALL ON user_credentials FROM readonly_user, analytics_user;

GRANT SELECT, DELETE ON user_sessions, audit_logs TO maintenance_user;
GRANT SELECT, INSERT, DELETE ON annual_predictions, quarterly_predictions,
  annual_predictions_archive, quarterly_predictions_archive TO maintenance_user;
GRANT SELECT ON companies TO maintenance_user;

-- Policy helpers run for app_user and the reporting roles only, never for PUBLIC: otherwise
-- anyone who can connect could probe users' roles and credentials.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_set_user(uuid), app_ctx_valid(), app_uid(), app_role(), app_tenant(), app_org(), app_is_super(), app_open_levels(),
  app_readable_orgs(), app_can_create(text, uuid, uuid), app_can_modify(text, uuid, uuid),
  app_can_manage(text, uuid, uuid), app_can_manage_user(uuid), app_auth_lookup(text),
  app_session_lookup(text) TO app_user;
GRANT EXECUTE ON FUNCTION set_updated_at(), prediction_scope_from_company(), users_org_tenant_check(),
  company_scope_cascade() TO app_user, maintenance_user;
REVOKE EXECUTE ON FUNCTION app_auth_lookup(text), app_session_lookup(text) FROM analytics_user;

GRANT pg_monitor TO monitoring_user;
