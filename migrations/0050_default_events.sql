-- Issue 15, backtesting: recorded default events of companies (a date and a source).
--
-- A default event lives with its company: whoever may see the company sees its defaults, and
-- whoever may modify the company (app_can_modify: its owner for personal companies, the
-- organization's admins, tenant admins of its tenant, super admins) may record or remove one.
-- The policies defer to the company row itself through a subquery that companies' own policies
-- filter (the pattern of bulk_upload_errors), so the two can never disagree.
CREATE TABLE company_default_events (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id UUID NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
    default_date DATE NOT NULL,
    source VARCHAR(200) NOT NULL,
    recorded_by UUID REFERENCES users(id),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- One event per company and date: recording the same default twice is a no-op, not a second default.
    UNIQUE (company_id, default_date),
    CONSTRAINT company_default_events_source_check CHECK (length(btrim(source)) > 0),
    CONSTRAINT company_default_events_date_check CHECK (default_date >= DATE '1900-01-01')
);
CREATE INDEX idx_company_default_events_date ON company_default_events (default_date);

ALTER TABLE company_default_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY company_default_events_read ON company_default_events FOR SELECT TO app_user
  USING (company_id IN (SELECT id FROM companies));
CREATE POLICY company_default_events_insert ON company_default_events FOR INSERT TO app_user
  WITH CHECK (recorded_by = app_uid() AND EXISTS (
    SELECT 1 FROM companies c WHERE c.id = company_id AND app_can_modify(c.access_level, c.organization_id, c.created_by)));
CREATE POLICY company_default_events_delete ON company_default_events FOR DELETE TO app_user
  USING (EXISTS (
    SELECT 1 FROM companies c WHERE c.id = company_id AND app_can_modify(c.access_level, c.organization_id, c.created_by)));
-- Events are corrected by deleting and recording again: no UPDATE for the app.
REVOKE UPDATE ON company_default_events FROM app_user;

-- Reporting and maintenance roles, as for the other tenant tables.
CREATE POLICY company_default_events_reporting_read ON company_default_events FOR SELECT TO readonly_user, analytics_user USING (true);
CREATE POLICY company_default_events_maintenance ON company_default_events FOR ALL TO maintenance_user USING (true) WITH CHECK (true);
GRANT SELECT ON company_default_events TO readonly_user, analytics_user, maintenance_user;
