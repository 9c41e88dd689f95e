-- Tables the spec's maintenance scripts refer to (user_sessions, audit_logs), the bulk upload
-- jobs, the organization whitelist, and archive tables for the monthly prediction archive.

-- Durable half of a session; Redis `session:{token_hash}` is the fast half. The bearer token is
-- never stored: token_hash = sha256(token), the same value that names the Redis key.
CREATE TABLE user_sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_activity TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    ip INET,
    user_agent TEXT,
    CONSTRAINT user_sessions_token_hash_format CHECK (token_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX idx_user_sessions_user ON user_sessions(user_id);
CREATE INDEX idx_user_sessions_last_activity ON user_sessions(last_activity);

-- Who changed what. before/after hold the row images with secrets removed by the app.
CREATE TABLE audit_logs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id UUID,
    tenant_id UUID,
    organization_id UUID,
    action VARCHAR(50) NOT NULL,
    table_name VARCHAR(100) NOT NULL,
    row_id TEXT,
    before JSONB,
    after JSONB,
    ip INET,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_audit_logs_created_at ON audit_logs(created_at);
CREATE INDEX idx_audit_logs_table_row ON audit_logs(table_name, row_id);
CREATE INDEX idx_audit_logs_tenant ON audit_logs(tenant_id, created_at);

CREATE TABLE organization_whitelist (
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email VARCHAR(255) NOT NULL,
    created_by UUID REFERENCES users(id),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (organization_id, email),
    CONSTRAINT organization_whitelist_email_lower CHECK (email = lower(email))
);

CREATE TABLE bulk_upload_jobs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id),
    organization_id UUID REFERENCES organizations(id),
    tenant_id UUID REFERENCES tenants(id),
    prediction_type VARCHAR(10) NOT NULL,
    access_level VARCHAR(20) NOT NULL DEFAULT 'personal',
    status VARCHAR(20) NOT NULL DEFAULT 'queued',
    file_name TEXT,
    file_size BIGINT,
    file_sha256 TEXT,
    rows_total INTEGER,
    rows_processed INTEGER NOT NULL DEFAULT 0,
    rows_succeeded INTEGER NOT NULL DEFAULT 0,
    rows_failed INTEGER NOT NULL DEFAULT 0,
    rows_superseded INTEGER NOT NULL DEFAULT 0,
    error_message TEXT,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT bulk_upload_jobs_type_check CHECK (prediction_type IN ('annual', 'quarterly')),
    CONSTRAINT bulk_upload_jobs_status_check CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    CONSTRAINT bulk_upload_jobs_access_level_check CHECK (access_level IN ('personal', 'organization', 'system'))
);
CREATE INDEX idx_bulk_upload_jobs_user ON bulk_upload_jobs(user_id, created_at);
CREATE TRIGGER trg_bulk_upload_jobs_updated_at BEFORE UPDATE ON bulk_upload_jobs FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Row-level errors of a bulk upload (line, column, value, reason), for GET /jobs/{id}/errors.
CREATE TABLE bulk_upload_errors (
    job_id UUID NOT NULL REFERENCES bulk_upload_jobs(id) ON DELETE CASCADE,
    line INTEGER NOT NULL,
    column_name TEXT,
    value TEXT,
    reason TEXT NOT NULL
);
CREATE INDEX idx_bulk_upload_errors_job ON bulk_upload_errors(job_id, line);

-- The monthly archive moves predictions older than two years here instead of deleting them
-- (the spec's DELETE loses data). No foreign keys: an archived row outlives its company.
CREATE TABLE annual_predictions_archive (LIKE annual_predictions INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE annual_predictions_archive ADD PRIMARY KEY (id), ADD COLUMN archived_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP;
CREATE TABLE quarterly_predictions_archive (LIKE quarterly_predictions INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE quarterly_predictions_archive ADD PRIMARY KEY (id), ADD COLUMN archived_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP;
