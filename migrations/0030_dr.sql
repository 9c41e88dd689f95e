-- Disaster recovery events (issue 8): every failover, promotion and rejoin that `accunode dr`
-- performs is recorded here, on the (new) primary. Operators' data: app_user gets nothing
-- (0003's default privileges would grant it DML, so they are revoked explicitly);
-- monitoring_user reads it for `dr status` and dashboards.
CREATE TABLE dr_events (
    id BIGSERIAL PRIMARY KEY,
    kind VARCHAR(32) NOT NULL CHECK (kind IN ('failover', 'watch_failover', 'rejoin', 'drill')),
    old_primary VARCHAR(255),
    new_primary VARCHAR(255),
    forced BOOLEAN NOT NULL DEFAULT false,
    reason TEXT,
    health_checks JSONB NOT NULL DEFAULT '[]'::jsonb,
    started_at TIMESTAMP NOT NULL,
    promoted_at TIMESTAMP,
    writable_at TIMESTAMP,
    published BOOLEAN NOT NULL DEFAULT false,
    notified BOOLEAN NOT NULL DEFAULT false,
    notify_error TEXT,
    details JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_dr_events_created_at ON dr_events (created_at DESC);

REVOKE ALL ON dr_events FROM PUBLIC;
REVOKE ALL ON dr_events FROM app_user;
REVOKE ALL ON SEQUENCE dr_events_id_seq FROM app_user;
GRANT SELECT ON dr_events TO monitoring_user;
