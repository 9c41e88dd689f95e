-- Issue 15, model registry: versioned model artifacts, one champion per kind, and an append-only
-- history of what was registered, promoted and retired, by whom.
--
-- Not tenant data: the artifacts are model parameters shared by every tenant (like models/*.json),
-- so no row-level security. The operator's CLI writes as the owner; app_user may only read
-- (a server can load the champion), and never the history's writers' notes.
CREATE TABLE model_versions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind VARCHAR(10) NOT NULL,
    name VARCHAR(100) NOT NULL,
    version VARCHAR(50) NOT NULL,
    status VARCHAR(10) NOT NULL DEFAULT 'candidate',
    artifact JSONB NOT NULL,
    sha256 CHAR(64) NOT NULL,
    reference_model BOOLEAN NOT NULL,
    registered_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    registered_by VARCHAR(200) NOT NULL,
    promoted_at TIMESTAMP,
    retired_at TIMESTAMP,
    UNIQUE (kind, name, version),
    CONSTRAINT model_versions_kind_check CHECK (kind IN ('annual', 'quarterly')),
    CONSTRAINT model_versions_status_check CHECK (status IN ('candidate', 'champion', 'retired'))
);
-- One champion per kind, enforced by the database rather than by care.
CREATE UNIQUE INDEX uq_model_versions_champion ON model_versions (kind) WHERE status = 'champion';

CREATE TABLE model_registry_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_version_id BIGINT NOT NULL REFERENCES model_versions(id),
    action VARCHAR(20) NOT NULL,
    actor VARCHAR(200) NOT NULL,
    reason TEXT,
    previous_champion_id BIGINT REFERENCES model_versions(id),
    at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT model_registry_events_action_check CHECK (action IN ('register', 'promote', 'retire'))
);
CREATE INDEX idx_model_registry_events_version ON model_registry_events (model_version_id, at);

REVOKE ALL ON model_versions, model_registry_events FROM app_user;
GRANT SELECT ON model_versions TO app_user;
