-- ---------------------------------------------------------------------------------------------
-- The functions every request runs, with plans that last the connection.
--
-- A LANGUAGE sql function marked SECURITY DEFINER or given a SET clause is never inlined, and
-- PostgreSQL parses and plans its body again on every execution of the statement that calls it
-- (its plan lives only as long as that statement). PL/pgSQL keeps its plans for the session. With
-- pg_stat_statements tracking nested statements, one API create at one connection spent
-- 0.78 ms of its 2.8 ms in app_set_user's user lookup, nearly all of it planning
-- app_user_live(); as PL/pgSQL the same call takes 0.03 ms (a loop of 2,000 app_set_user calls:
-- 663 ms before, 152 ms after). Same results, same privileges, same names and signatures.
-- ---------------------------------------------------------------------------------------------

-- 0041's liveness rule, unchanged: active, and (a super admin, or in a live tenant and
-- organization).
CREATE OR REPLACE FUNCTION app_user_live(uid uuid) RETURNS boolean LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  RETURN coalesce((
    SELECT u.is_active AND (u.role = 'super_admin' OR (coalesce(t.is_active, true) AND coalesce(o.is_active, true)))
    FROM public.users u
    LEFT JOIN public.tenants t ON t.id = u.tenant_id
    LEFT JOIN public.organizations o ON o.id = u.organization_id
    WHERE u.id = uid), false);
END $$;

-- 0041's app_set_user with the liveness rule in its own lookup: one indexed query, not two.
CREATE OR REPLACE FUNCTION app_set_user(uid uuid) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
DECLARE
  u_id uuid; u_role text; u_tenant uuid; u_org uuid; u_live boolean;
  orgs uuid[];
BEGIN
  SELECT x.id, x.role, x.tenant_id, x.organization_id,
         x.is_active AND (x.role = 'super_admin' OR (coalesce(t.is_active, true) AND coalesce(o.is_active, true)))
    INTO u_id, u_role, u_tenant, u_org, u_live
    FROM public.users x
    LEFT JOIN public.tenants t ON t.id = x.tenant_id
    LEFT JOIN public.organizations o ON o.id = x.organization_id
    WHERE x.id = uid;
  IF u_id IS NULL OR NOT coalesce(u_live, false) THEN
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

-- Every request whose session is not cached reads it here; every sign-in reads the login here.
CREATE OR REPLACE FUNCTION app_session_lookup(hash text)
RETURNS TABLE (session_id uuid, user_id uuid, expires_at timestamp, revoked_at timestamp, last_activity timestamp, user_active boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT s.id, s.user_id, s.expires_at, s.revoked_at, s.last_activity, public.app_user_live(s.user_id)
  FROM public.user_sessions s
  WHERE s.token_hash = hash;
END $$;

CREATE OR REPLACE FUNCTION app_auth_lookup(login text)
RETURNS TABLE (user_id uuid, password_hash text, is_active boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT u.id, c.password_hash::text, public.app_user_live(u.id)
  FROM public.users u LEFT JOIN public.user_credentials c ON c.user_id = u.id
  WHERE lower(u.email) = lower(login) OR lower(u.username) = lower(login)
  LIMIT 1;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Creates that arrive together, made together: the API coalesces concurrent one-round-trip
-- creates (0040's app_create_*_prediction) into one call of these, which runs each item exactly
-- as the single function does (its own caller context, checks, row-level security, insert and
-- audit row) and returns their outcomes in order, in one statement and one transaction.
-- Measured with pgbench, 16 clients, as app_user: 727 creates/s one per transaction, 1,112/s in
-- fours. An item that raises fails the whole call, and the API then makes each item alone.
-- ---------------------------------------------------------------------------------------------
DO $do$
DECLARE k text;
BEGIN
  FOREACH k IN ARRAY ARRAY['annual', 'quarterly'] LOOP
    EXECUTE format($f$
      CREATE FUNCTION public.app_create_%1$s_predictions(items jsonb)
      RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, public AS $body$
      DECLARE
        it jsonb;
        outcomes jsonb[] := ARRAY[]::jsonb[];
      BEGIN
        FOR it IN SELECT value FROM jsonb_array_elements(items) LOOP
          outcomes := outcomes || public.app_create_%1$s_prediction((it->>'uid')::uuid, (it->>'company')::uuid, it->>'level', it->'v', (it->>'ip')::inet);
        END LOOP;
        RETURN to_jsonb(outcomes);
      END $body$;
    $f$, k);
    EXECUTE format('REVOKE ALL ON FUNCTION public.app_create_%s_predictions(jsonb) FROM PUBLIC, analytics_user', k);
    EXECUTE format('GRANT EXECUTE ON FUNCTION public.app_create_%s_predictions(jsonb) TO app_user', k);
  END LOOP;
END $do$;
