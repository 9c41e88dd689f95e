-- Operations history: maintenance runs, alarm states and their transitions, the figures the
-- 5-minute alarms job samples (for `accunode scaling recommend`), and the last counter
-- snapshots that period deltas are computed from (pg_stat_statements, Redis INFO, /proc).
--
-- Who may touch what:
--   * the owner (DATABASE_ADMIN_URL) runs maintenance (VACUUM needs the table owner in
--     PostgreSQL 15) and records maintenance_runs;
--   * monitoring_user (pg_monitor) runs `monitor`, `diagnose`, `alarms` and the alarms job: it
--     reads every history table and writes alarm states, transitions, samples and snapshots.
--     It gets no UPDATE/DELETE on transitions or runs (history is append-only for it);
--   * app_user gets nothing here (the foundation rule: the application never reads or writes
--     operations history). 0003's ALTER DEFAULT PRIVILEGES would grant it SELECT/INSERT/UPDATE/
--     DELETE on every new table, so it is revoked explicitly below. readonly_user and
--     analytics_user keep the SELECT the default privileges give them (reports on operations).

CREATE TABLE maintenance_runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind VARCHAR(10) NOT NULL,
    dry_run BOOLEAN NOT NULL DEFAULT false,
    started_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    finished_at TIMESTAMP,
    outcome VARCHAR(20) NOT NULL DEFAULT 'running',
    rows_affected BIGINT NOT NULL DEFAULT 0,
    -- One entry per step: {step, outcome, rows, detail, duration_ms}.
    steps JSONB NOT NULL DEFAULT '[]',
    error TEXT,
    host TEXT,
    CONSTRAINT maintenance_runs_kind_check CHECK (kind IN ('daily', 'weekly', 'monthly')),
    CONSTRAINT maintenance_runs_outcome_check CHECK (outcome IN ('running', 'succeeded', 'failed', 'skipped'))
);
CREATE INDEX idx_maintenance_runs_started ON maintenance_runs(started_at DESC);

-- Current state of each alarm (one row per alarm name).
CREATE TABLE alarm_states (
    name VARCHAR(100) PRIMARY KEY,
    state VARCHAR(20) NOT NULL,
    since TIMESTAMP NOT NULL,
    -- Consecutive evaluation periods over the threshold (an alarm with evaluation_periods 2
    -- fires on the second).
    breaches INTEGER NOT NULL DEFAULT 0,
    last_value DOUBLE PRECISION,
    last_reason TEXT,
    evaluated_at TIMESTAMP NOT NULL,
    CONSTRAINT alarm_states_state_check CHECK (state IN ('OK', 'ALARM', 'INSUFFICIENT_DATA'))
);

CREATE TABLE alarm_transitions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    from_state VARCHAR(20),
    to_state VARCHAR(20) NOT NULL,
    value DOUBLE PRECISION,
    threshold DOUBLE PRECISION,
    reason TEXT,
    at TIMESTAMP NOT NULL,
    notified BOOLEAN NOT NULL DEFAULT false,
    notify_error TEXT
);
CREATE INDEX idx_alarm_transitions_name_at ON alarm_transitions(name, at DESC);
CREATE INDEX idx_alarm_transitions_at ON alarm_transitions(at DESC);

-- Figures sampled by the 5-minute job; value NULL = unavailable, with the reason in source.
CREATE TABLE metric_samples (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    metric VARCHAR(64) NOT NULL,
    value DOUBLE PRECISION,
    source TEXT NOT NULL,
    taken_at TIMESTAMP NOT NULL
);
CREATE INDEX idx_metric_samples_metric_at ON metric_samples(metric, taken_at DESC);

-- The previous reading of each cumulative counter set, so an evaluation can compute what
-- happened during its period.
CREATE TABLE ops_snapshots (
    source VARCHAR(64) PRIMARY KEY,
    taken_at TIMESTAMP NOT NULL,
    data JSONB NOT NULL
);

REVOKE ALL ON maintenance_runs, alarm_states, alarm_transitions, metric_samples, ops_snapshots FROM app_user;
REVOKE ALL ON SEQUENCE maintenance_runs_id_seq, alarm_transitions_id_seq, metric_samples_id_seq FROM app_user;

GRANT SELECT ON maintenance_runs TO monitoring_user;
GRANT SELECT, INSERT, UPDATE ON alarm_states TO monitoring_user;
GRANT SELECT, INSERT ON alarm_transitions TO monitoring_user;
-- UPDATE only of the notification outcome, written after the webhook answers.
GRANT UPDATE (notified, notify_error) ON alarm_transitions TO monitoring_user;
GRANT SELECT, INSERT ON metric_samples TO monitoring_user;
GRANT SELECT, INSERT, UPDATE ON ops_snapshots TO monitoring_user;
GRANT USAGE ON SEQUENCE alarm_transitions_id_seq, metric_samples_id_seq TO monitoring_user;

-- Bloat figures are measured, not guessed from statistics: pgstattuple's functions are granted
-- to pg_stat_scan_tables, which pg_monitor (and so monitoring_user) includes. Creating it needs
-- a superuser (rds_superuser on RDS); without that the commands say bloat is unavailable and why.
-- pg_stat_statements is created the same way; it only returns rows once the server preloads it
-- (shared_preload_libraries, a restart): `accunode diagnose` says so and how when it does not.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE 'pg_stat_statements not created (needs a superuser)';
    END;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgstattuple') THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS pgstattuple;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE 'pgstattuple not created (needs a superuser): bloat figures will be unavailable';
    END;
  END IF;
END $$;

-- 0003's default privileges hand analytics_user EXECUTE on every function the owner creates in
-- public, which would include pg_stat_statements_reset() and pgstattuple's scanners: take that
-- back (the extensions grant what they intend to pg_read_all_stats / pg_stat_scan_tables).
DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname IN ('pg_stat_statements', 'pgstattuple')
  LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM analytics_user, app_user', f);
  END LOOP;
END $$;
