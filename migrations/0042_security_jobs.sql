-- Bulk jobs and trust in Redis (issue 13, items 8 and 7).
--
-- 0003 let whoever manages the uploader (org admin, tenant admin) read, cancel and delete any of
-- the uploader's jobs, and through the errors policy read their rows' raw cell values, although
-- the predictions the same personal upload writes are invisible to them. Jobs now follow the
-- predictions' rule: a personal job is the uploader's (and a super admin's, who reads every
-- level); organization and system jobs stay visible to those who manage the uploader. Admins do
-- not see a member's personal jobs at all, not even as counts: to them such a job is a 404.
-- bulk_upload_errors follows through its existing policy (job_id IN the visible jobs).

DROP POLICY bulk_upload_jobs_read ON bulk_upload_jobs;
DROP POLICY bulk_upload_jobs_update ON bulk_upload_jobs;
DROP POLICY bulk_upload_jobs_delete ON bulk_upload_jobs;

CREATE POLICY bulk_upload_jobs_read ON bulk_upload_jobs FOR SELECT TO app_user
  USING (user_id = app_uid() OR app_is_super() OR (access_level <> 'personal' AND app_can_manage_user(user_id)));
CREATE POLICY bulk_upload_jobs_update ON bulk_upload_jobs FOR UPDATE TO app_user
  USING (user_id = app_uid() OR app_is_super() OR (access_level <> 'personal' AND app_can_manage_user(user_id)))
  WITH CHECK (user_id = app_uid() OR app_is_super() OR (access_level <> 'personal' AND app_can_manage_user(user_id)));
CREATE POLICY bulk_upload_jobs_delete ON bulk_upload_jobs FOR DELETE TO app_user
  USING (user_id = app_uid() OR app_is_super() OR (access_level <> 'personal' AND app_can_manage_user(user_id)));

-- What a job is (whose, at which level, which file) is fixed when it is recorded. Cancelling a
-- queued job deletes its file and the worker opens it as the uploader, so a job re-pointed at
-- another upload's path would delete or read someone else's file; re-levelled, a personal job
-- would become visible to admins (or an organization job hidden from them).
CREATE FUNCTION bulk_upload_jobs_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.user_id IS DISTINCT FROM OLD.user_id OR NEW.file_path IS DISTINCT FROM OLD.file_path
     OR NEW.access_level IS DISTINCT FROM OLD.access_level OR NEW.organization_id IS DISTINCT FROM OLD.organization_id
     OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id THEN
    RAISE EXCEPTION 'a bulk job''s owner, access level, organization, tenant and file are fixed once recorded'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER trg_bulk_upload_jobs_fixed BEFORE UPDATE ON bulk_upload_jobs
  FOR EACH ROW EXECUTE FUNCTION bulk_upload_jobs_fixed();

-- ---------------------------------------------------------------------------------------------
-- Trust in Redis (issue 13, item 7). Two more keys in 0040's app_secrets, so that whoever can
-- write to Redis but cannot read this database can neither mint a session nor steer a failover:
--   'session' signs each session:{hash} entry (an HMAC of the entry and its token hash),
--   'dr'      signs the primary changes published on accunode:dr:primary.
-- app_secret() is replaced to open the door to them; a migration that adds names of its own must
-- list these with 0040's 'cursor'.
-- ---------------------------------------------------------------------------------------------
INSERT INTO app_secrets (name, secret)
VALUES ('session', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')),
       ('dr', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))
ON CONFLICT (name) DO NOTHING;
CREATE OR REPLACE FUNCTION app_secret(key_name text) RETURNS bytea LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT secret FROM public.app_secrets WHERE name = key_name AND key_name IN ('cursor', 'session', 'dr')
$$;
REVOKE ALL ON FUNCTION app_secret(text) FROM PUBLIC, analytics_user;
GRANT EXECUTE ON FUNCTION app_secret(text) TO app_user;
