-- Issue 15, shadow scoring and re-scoring: one row per run of a registered model over stored
-- predictions.
--
-- A shadow run scores a scope's stored predictions with a candidate and changes nothing the users
-- see: its report (PD shift distribution, risk level and implied rating changes, AUC and
-- calibration where defaults are recorded) is kept here for the operator who decides on a
-- promotion. A re-score run rewrites the scope's stored predictions that an earlier model made
-- with the champion's outputs; each rewritten prediction gets an audit_logs row with its old
-- values, and the watch-list triggers (migration 0070) raise the alerts.
--
-- Operators' data, like the registry: read and written as the owner only. The reports hold
-- aggregates over tenants' predictions, so app_user and the reporting roles get nothing.
CREATE TABLE model_runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind VARCHAR(10) NOT NULL,
    action VARCHAR(10) NOT NULL,
    model_version_id BIGINT NOT NULL REFERENCES model_versions(id),
    -- The scope: one tenant, one organization, or (both null) every stored prediction.
    tenant_id UUID REFERENCES tenants(id) ON DELETE CASCADE,
    organization_id UUID REFERENCES organizations(id) ON DELETE CASCADE,
    status VARCHAR(10) NOT NULL DEFAULT 'queued',
    requested_by VARCHAR(200) NOT NULL,
    progress JSONB NOT NULL DEFAULT '{}'::jsonb,
    report JSONB,
    error TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    CONSTRAINT model_runs_kind_check CHECK (kind IN ('annual', 'quarterly')),
    CONSTRAINT model_runs_action_check CHECK (action IN ('shadow', 'rescore')),
    CONSTRAINT model_runs_status_check CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    CONSTRAINT model_runs_one_scope CHECK (tenant_id IS NULL OR organization_id IS NULL)
);
CREATE INDEX idx_model_runs_version ON model_runs (model_version_id, created_at);
CREATE INDEX idx_model_runs_created ON model_runs (created_at, id);

REVOKE ALL ON model_runs FROM app_user, readonly_user, analytics_user;
REVOKE ALL ON SEQUENCE model_runs_id_seq FROM app_user;
