-- Bulk jobs (issue 13, item 8): a personal upload stays personal.
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
