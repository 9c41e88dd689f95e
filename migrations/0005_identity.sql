-- Identity: session revocation fan-out and the organization join flow.

-- A session revoked or deleted in the database (by the API, by an operator's UPDATE, by a
-- user's deactivation) is announced to every api process, which drops the Redis copy at once:
-- the database wins over a stale `session:{hash}` key.
CREATE FUNCTION notify_session_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('accunode_session_revoked', OLD.token_hash);
    RETURN OLD;
  END IF;
  IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
    PERFORM pg_notify('accunode_session_revoked', NEW.token_hash);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER trg_user_sessions_revoked AFTER UPDATE OF revoked_at OR DELETE ON user_sessions
  FOR EACH ROW EXECUTE FUNCTION notify_session_revoked();

-- Deactivating a user ends all their sessions in the same statement, whoever deactivates.
CREATE FUNCTION revoke_sessions_of_inactive_user() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF NEW.is_active IS FALSE AND OLD.is_active IS DISTINCT FROM FALSE THEN
    UPDATE public.user_sessions SET revoked_at = CURRENT_TIMESTAMP WHERE user_id = NEW.id AND revoked_at IS NULL;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER trg_users_deactivated AFTER UPDATE OF is_active ON users
  FOR EACH ROW EXECUTE FUNCTION revoke_sessions_of_inactive_user();

-- Joining an organization changes the caller's own tenant, organization and role, which the
-- users policy forbids a user to do to itself; this function is the one narrow door. It locks
-- the organization row so two joins cannot both take the last free seat.
CREATE FUNCTION app_join_organization(token_hash text)
RETURNS TABLE (organization_id uuid, tenant_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  me record;
  org record;
  members integer;
BEGIN
  SELECT u.id, u.email, u.role, u.organization_id INTO me FROM public.users u WHERE u.id = public.app_uid() AND u.is_active;
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
  IF org.is_active IS NOT TRUE THEN
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

REVOKE EXECUTE ON FUNCTION notify_session_revoked(), revoke_sessions_of_inactive_user(), app_join_organization(text) FROM PUBLIC, analytics_user;
GRANT EXECUTE ON FUNCTION app_join_organization(text) TO app_user;
GRANT EXECUTE ON FUNCTION notify_session_revoked(), revoke_sessions_of_inactive_user() TO app_user, maintenance_user;
