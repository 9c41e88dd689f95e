-- Security: access that ends when it should (issue 13, items 1, 2 and 9).
--
-- 1. An account is live only while the user, its tenant and its organization are all active
--    (a super admin is platform-wide: its tenant, if any, does not bind it). Login, session
--    look-up, the caller's context and join all ask the same question, app_user_live().
-- 2. Deactivating an organization or a tenant revokes its members' sessions in the same
--    statement; the revocation trigger of 0005 then NOTIFYs every api process, which drops the
--    Redis copies. Reactivation revokes nothing back: revoked sessions stay revoked, users sign in
--    again.
-- 3. app_uid() honours app.current_user_id only while app_set_user() vouched for it (0003's
--    promise: setting app.current_user_id alone sees nothing).
-- 4. Sessions cannot be revived or extended through row-level security.

-- ---------------------------------------------------------------------------------------------
-- Liveness
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION app_user_live(uid uuid) RETURNS boolean LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT coalesce((
    SELECT u.is_active AND (u.role = 'super_admin' OR (coalesce(t.is_active, true) AND coalesce(o.is_active, true)))
    FROM public.users u
    LEFT JOIN public.tenants t ON t.id = u.tenant_id
    LEFT JOIN public.organizations o ON o.id = u.organization_id
    WHERE u.id = uid), false)
$$;

-- Same signatures as 0003's, so their grants stay; is_active / user_active now mean "live".
CREATE OR REPLACE FUNCTION app_auth_lookup(login text)
RETURNS TABLE (user_id uuid, password_hash text, is_active boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT u.id, c.password_hash, public.app_user_live(u.id)
  FROM public.users u LEFT JOIN public.user_credentials c ON c.user_id = u.id
  WHERE lower(u.email) = lower(login) OR lower(u.username) = lower(login)
  LIMIT 1
$$;

CREATE OR REPLACE FUNCTION app_session_lookup(hash text)
RETURNS TABLE (session_id uuid, user_id uuid, expires_at timestamp, revoked_at timestamp, last_activity timestamp, user_active boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT s.id, s.user_id, s.expires_at, s.revoked_at, s.last_activity, public.app_user_live(s.user_id)
  FROM public.user_sessions s
  WHERE s.token_hash = hash
$$;

-- ---------------------------------------------------------------------------------------------
-- The caller's context (0040's, plus liveness). Three cases:
--   a live user: its full context;
--   a user that exists but is not live: no context at all (app_uid() is NULL: not even its own
--     rows), as for a deactivated user;
--   an id with no user row yet: app_uid() only, no role, no scopes. Registration runs as the
--     account it is creating (the users_insert policy admits exactly one plain user with that
--     id), so it needs its own id before the row exists.
-- A tenant admin's readable organizations are its tenant's active ones: an inactive
-- organization's rows are frozen for everyone but a super admin until it is reactivated.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION app_set_user(uid uuid) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
DECLARE
  u_id uuid; u_role text; u_tenant uuid; u_org uuid; u_live boolean;
  orgs uuid[];
BEGIN
  SELECT x.id, x.role, x.tenant_id, x.organization_id, public.app_user_live(x.id)
    INTO u_id, u_role, u_tenant, u_org, u_live
    FROM public.users x WHERE x.id = uid;
  IF u_id IS NULL OR NOT u_live THEN
    PERFORM set_config('app.current_user_id', coalesce(uid::text, ''), true),
            set_config('app.ctx_uid', CASE WHEN u_id IS NULL THEN coalesce(uid::text, '') ELSE '' END, true),
            set_config('app.ctx_role', '', true), set_config('app.ctx_tenant', '', true), set_config('app.ctx_org', '', true),
            set_config('app.ctx_levels', '{}', true), set_config('app.ctx_orgs', '{}', true);
    RETURN;
  END IF;
  IF u_role = 'tenant_admin' THEN
    SELECT coalesce(array_agg(o.id), ARRAY[]::uuid[]) INTO orgs FROM public.organizations o WHERE o.tenant_id = u_tenant AND o.is_active;
  ELSIF u_role IN ('org_member', 'org_admin') AND u_org IS NOT NULL THEN
    orgs := ARRAY[u_org];
  ELSE
    orgs := ARRAY[]::uuid[];
  END IF;
  PERFORM set_config('app.current_user_id', u_id::text, true), set_config('app.ctx_uid', u_id::text, true),
          set_config('app.ctx_role', u_role, true), set_config('app.ctx_tenant', coalesce(u_tenant::text, ''), true),
          set_config('app.ctx_org', coalesce(u_org::text, ''), true),
          set_config('app.ctx_levels', CASE WHEN u_role = 'super_admin' THEN '{system,organization,personal}' ELSE '{system}' END, true),
          set_config('app.ctx_orgs', orgs::text, true);
END $$;

-- Without the check, `SET app.current_user_id = '<victim>'` on an app_user connection read the
-- victim's personal rows through every policy arm keyed on app_uid().
CREATE OR REPLACE FUNCTION app_uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN pg_catalog.current_setting('app.ctx_uid', true) = pg_catalog.current_setting('app.current_user_id', true)
              THEN nullif(pg_catalog.current_setting('app.current_user_id', true), '')::uuid END
$$;

-- 0005's join, with the organization's tenant counted too (the caller's own liveness is
-- app_uid() itself now).
CREATE OR REPLACE FUNCTION app_join_organization(token_hash text)
RETURNS TABLE (organization_id uuid, tenant_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  me record;
  org record;
  members integer;
BEGIN
  SELECT u.id, u.email, u.role, u.organization_id INTO me FROM public.users u
   WHERE u.id = public.app_uid() AND public.app_user_live(u.id);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'not authenticated' USING ERRCODE = 'P0401';
  END IF;
  IF me.organization_id IS NOT NULL OR me.role <> 'user' THEN
    RAISE EXCEPTION 'already a member of an organization' USING ERRCODE = 'P0409';
  END IF;
  SELECT o.* INTO org FROM public.organizations o WHERE o.join_token_hash = app_join_organization.token_hash FOR UPDATE;
  IF NOT FOUND OR org.join_token_expires_at IS NULL OR org.join_token_expires_at < CURRENT_TIMESTAMP THEN
    RAISE EXCEPTION 'invalid or expired join token' USING ERRCODE = 'P0404';
  END IF;
  IF org.is_active IS NOT TRUE OR NOT EXISTS (SELECT 1 FROM public.tenants t WHERE t.id = org.tenant_id AND t.is_active) THEN
    RAISE EXCEPTION 'organization is not active' USING ERRCODE = 'P0403';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM public.organization_whitelist w WHERE w.organization_id = org.id AND w.email = lower(me.email)) THEN
    RAISE EXCEPTION 'email is not on the organization''s whitelist' USING ERRCODE = 'P0403';
  END IF;
  SELECT count(*) INTO members FROM public.users u WHERE u.organization_id = org.id AND u.is_active;
  IF members >= org.max_members THEN
    RAISE EXCEPTION 'organization is full' USING ERRCODE = 'P0409';
  END IF;
  UPDATE public.users SET tenant_id = org.tenant_id, organization_id = org.id, role = 'org_member' WHERE id = me.id;
  RETURN QUERY SELECT org.id, org.tenant_id;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Deactivating an organization or a tenant ends its members' sessions, whoever deactivates and
-- however (API, CLI, an operator's UPDATE). Only sessions still valid are touched: each one
-- revoked is one NOTIFY.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION revoke_sessions_of_inactive_scope() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF NEW.is_active IS FALSE AND OLD.is_active IS DISTINCT FROM FALSE THEN
    UPDATE public.user_sessions s SET revoked_at = CURRENT_TIMESTAMP
      FROM public.users u
     WHERE u.id = s.user_id AND u.role <> 'super_admin'
       AND (CASE TG_TABLE_NAME WHEN 'organizations' THEN u.organization_id ELSE u.tenant_id END) = NEW.id
       AND s.revoked_at IS NULL AND s.expires_at > CURRENT_TIMESTAMP;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER trg_organizations_deactivated AFTER UPDATE OF is_active ON organizations
  FOR EACH ROW EXECUTE FUNCTION revoke_sessions_of_inactive_scope();
CREATE TRIGGER trg_tenants_deactivated AFTER UPDATE OF is_active ON tenants
  FOR EACH ROW EXECUTE FUNCTION revoke_sessions_of_inactive_scope();

-- ---------------------------------------------------------------------------------------------
-- Sessions: the app writes last_activity (touch) and revoked_at (logout, revocation), nothing
-- else, and a revoked row is final. The policy cannot see the old row in WITH CHECK, so
-- "revoked stays revoked" is USING (a revoked row is not updatable at all), "never extended"
-- is the column grant (expires_at is not writable), and "never in the future" bounds
-- last_activity, which the idle timeout reads. A new session may not outlive the longest
-- absolute lifetime the configuration accepts (365 days).
-- ---------------------------------------------------------------------------------------------
DROP POLICY user_sessions_update ON user_sessions;
CREATE POLICY user_sessions_update ON user_sessions FOR UPDATE TO app_user
  USING ((user_id = app_uid() OR app_can_manage_user(user_id)) AND revoked_at IS NULL)
  WITH CHECK ((user_id = app_uid() OR app_can_manage_user(user_id)) AND last_activity <= CURRENT_TIMESTAMP);
DROP POLICY user_sessions_insert ON user_sessions;
CREATE POLICY user_sessions_insert ON user_sessions FOR INSERT TO app_user
  WITH CHECK (user_id = app_uid() AND revoked_at IS NULL AND last_activity <= CURRENT_TIMESTAMP
              AND expires_at <= CURRENT_TIMESTAMP + interval '366 days');
REVOKE UPDATE ON user_sessions FROM app_user;
GRANT UPDATE (last_activity, revoked_at) ON user_sessions TO app_user;

REVOKE EXECUTE ON FUNCTION revoke_sessions_of_inactive_scope() FROM PUBLIC, analytics_user;
GRANT EXECUTE ON FUNCTION revoke_sessions_of_inactive_scope() TO app_user, maintenance_user;
REVOKE EXECUTE ON FUNCTION app_user_live(uuid) FROM PUBLIC, analytics_user;
GRANT EXECUTE ON FUNCTION app_user_live(uuid) TO app_user;
