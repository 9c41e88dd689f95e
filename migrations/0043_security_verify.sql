-- Security review (issue 13): e-mail verification, and rules RLS alone did not hold.

-- ---------------------------------------------------------------------------------------------
-- E-mail verification. A registered address is only a claim until its owner follows the link we
-- sent to it; the whitelist join trusts addresses, so it must only trust proven ones.
--
-- Only a token's SHA-256 is stored: a copy of this table (a backup, a replica, a reporting role)
-- cannot be turned into working links. `email` is the address the link was sent to, so a link
-- proves that address and no other (if the address changes, old links stop working).
-- ---------------------------------------------------------------------------------------------
CREATE TABLE email_verifications (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email VARCHAR(255) NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX idx_email_verifications_user ON email_verifications(user_id, created_at DESC);
-- Nobody reads or writes it directly: the two functions below are the only doors, so no role is
-- granted anything and RLS (with no policy) denies what a later blanket grant might open. Not
-- FORCEd, for the reason given at the end of this file.
ALTER TABLE email_verifications ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON email_verifications FROM app_user, readonly_user, analytics_user, maintenance_user;

-- The tokens are HMAC-signed with a key every api process shares (like 'cursor' in 0040), so a
-- forged or truncated token is refused before the database is asked, and its expiry cannot be
-- edited. A function of its own rather than a new name in app_secret(), which other changes
-- extend.
INSERT INTO app_secrets (name, secret)
VALUES ('email_verify', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))
ON CONFLICT (name) DO NOTHING;
CREATE FUNCTION app_email_verify_key() RETURNS bytea LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT secret FROM public.app_secrets WHERE name = 'email_verify'
$$;

-- (The lifetime travels as seconds: the columns are TIMESTAMP, and a client's time zone must not
-- shift an expiry.)
-- Records a new link for the calling user (its RLS context, not a parameter, says who) and
-- retires that user's earlier unused links: only the newest e-mail works. Returns the address to
-- send to, or already_verified without recording anything.
CREATE FUNCTION app_issue_email_verification(token_hash text, ttl_seconds integer)
RETURNS TABLE (email text, already_verified boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE me record;
BEGIN
  IF NOT public.app_ctx_valid() THEN
    RAISE EXCEPTION 'not authenticated' USING ERRCODE = 'P0401';
  END IF;
  SELECT u.id, u.email, u.is_verified INTO me FROM public.users u WHERE u.id = public.app_uid() AND u.is_active;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'not authenticated' USING ERRCODE = 'P0401';
  END IF;
  IF me.is_verified THEN
    RETURN QUERY SELECT me.email::text, true;
    RETURN;
  END IF;
  DELETE FROM public.email_verifications v WHERE v.user_id = me.id AND v.used_at IS NULL;
  INSERT INTO public.email_verifications (user_id, email, token_hash, expires_at)
  VALUES (me.id, lower(me.email), app_issue_email_verification.token_hash,
          CURRENT_TIMESTAMP + make_interval(secs => app_issue_email_verification.ttl_seconds));
  RETURN QUERY SELECT me.email::text, false;
END $$;

-- Consumes a link. Anonymous on purpose: the link is often opened on another device than the
-- one signed in. Outcome: verified | used | expired | invalid (unknown, retired, or the address
-- changed since it was sent, or the account is deactivated).
CREATE FUNCTION app_verify_email(token_hash text)
RETURNS TABLE (user_id uuid, outcome text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE v record; u record;
BEGIN
  SELECT * INTO v FROM public.email_verifications e WHERE e.token_hash = app_verify_email.token_hash FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT NULL::uuid, 'invalid'::text;
    RETURN;
  END IF;
  IF v.used_at IS NOT NULL THEN
    RETURN QUERY SELECT v.user_id, 'used'::text;
    RETURN;
  END IF;
  IF v.expires_at <= CURRENT_TIMESTAMP THEN
    RETURN QUERY SELECT v.user_id, 'expired'::text;
    RETURN;
  END IF;
  SELECT x.id, x.email, x.is_active INTO u FROM public.users x WHERE x.id = v.user_id FOR UPDATE;
  IF NOT FOUND OR NOT u.is_active OR lower(u.email) <> v.email THEN
    RETURN QUERY SELECT v.user_id, 'invalid'::text;
    RETURN;
  END IF;
  UPDATE public.email_verifications SET used_at = CURRENT_TIMESTAMP WHERE id = v.id;
  UPDATE public.users SET is_verified = true WHERE id = u.id;
  RETURN QUERY SELECT u.id, 'verified'::text;
END $$;

REVOKE ALL ON FUNCTION app_email_verify_key(), app_issue_email_verification(text, integer), app_verify_email(text) FROM PUBLIC, analytics_user, readonly_user;
GRANT EXECUTE ON FUNCTION app_email_verify_key(), app_issue_email_verification(text, integer), app_verify_email(text) TO app_user;

-- ---------------------------------------------------------------------------------------------
-- Who may say an address is verified, and who may hold a role.
--
-- users_update lets a user edit its own row, is_verified included, and users_insert lets
-- self-registration insert is_verified = true: through app_user, verification would be a claim
-- again. Only app_verify_email() (running as the owner) or the owner connection (operators:
-- `accunode user create`, the demo seed) sets it; an admin creating an account through the API
-- vouches for it (admin.createUser inserts it verified), a self-registered row never is.
--
-- An account holds a role above `user` only with a verified address; checked whenever the role,
-- scope or verification changes (also for the owner), so the join, an admin's promotion and an
-- operator's UPDATE all meet the same rule. Accounts that already held a role unverified before
-- this migration keep it until one of those changes (docs/security.md has the query to find them).
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION users_verification_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_user = 'app_user' THEN
    IF TG_OP = 'INSERT' AND NEW.is_verified AND NEW.id = public.app_uid() THEN
      RAISE EXCEPTION 'a self-registered account starts unverified' USING ERRCODE = '42501';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.is_verified IS DISTINCT FROM OLD.is_verified THEN
      RAISE EXCEPTION 'is_verified changes only by following the e-mail verification link' USING ERRCODE = '42501';
    END IF;
  END IF;
  -- Unknown roles are left to the CHECK constraint, and a self-registration asking for a role to
  -- users_insert's policy, so those refusals keep their own words.
  IF NEW.role IN ('org_member', 'org_admin', 'tenant_admin', 'super_admin') AND NEW.is_verified IS NOT TRUE
     AND NOT (current_user = 'app_user' AND TG_OP = 'INSERT' AND NEW.id = public.app_uid()) AND (
       TG_OP = 'INSERT'
       OR NEW.role IS DISTINCT FROM OLD.role
       OR NEW.organization_id IS DISTINCT FROM OLD.organization_id
       OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
       OR NEW.is_verified IS DISTINCT FROM OLD.is_verified) THEN
    RAISE EXCEPTION 'e-mail address not verified: an account holds a role above user only once its address is verified'
      USING ERRCODE = 'P0403';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER trg_users_verification_guard BEFORE INSERT OR UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION users_verification_guard();

-- Bulk jobs' file_path: fixed once recorded by 0042's trigger (trg_bulk_upload_jobs_fixed).

REVOKE ALL ON FUNCTION users_verification_guard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION users_verification_guard() TO app_user, maintenance_user;

-- ---------------------------------------------------------------------------------------------
-- FORCE ROW LEVEL SECURITY on the tenant tables: deliberately not done (docs/security.md,
-- "Row-level security and roles"). The SECURITY DEFINER doors (app_set_user, app_auth_lookup,
-- app_session_lookup, app_join_organization, the prediction and rollup functions...) read across
-- tenants as the owner by design; forcing RLS would subject them to policies written for
-- app_user, and with an owner that is neither superuser nor BYPASSRLS (a managed PostgreSQL)
-- every request would see nothing. With a superuser owner FORCE changes nothing at all. What it
-- would guard against, the owner serving requests, is refused at start instead: the app and
-- replica pools check that they log in as app_user, without superuser, BYPASSRLS or ownership
-- (src/db/request-role.ts), tested in test/security/verify.test.ts.
-- ---------------------------------------------------------------------------------------------
