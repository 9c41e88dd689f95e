-- What the bulk-upload worker needs on top of 0002's bulk_upload_jobs / bulk_upload_errors
-- (issue 6). Row-level security on both tables stays as 0003 set it (the uploader, and those
-- who manage the uploader, see and change a job; errors follow their job).

ALTER TABLE bulk_upload_jobs
    -- The BullMQ job that processes this upload (queue "bulk"), for cancellation and support.
    ADD COLUMN queue_job_id TEXT,
    -- Where the uploaded file was streamed to (shared with the workers), and its format.
    ADD COLUMN file_path TEXT,
    ADD COLUMN file_format VARCHAR(10),
    -- Set by DELETE /jobs/{id}; the worker checks it (under the job row's lock) before every chunk.
    ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT false,
    -- How many times a worker started this upload (> 1 after a crash or a hand-back at shutdown;
    -- every attempt starts from the top and idempotent upserts make the result the same).
    ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN chunks_committed INTEGER NOT NULL DEFAULT 0,
    -- Human-readable notes: unknown columns ignored, what a cancellation kept, ...
    ADD COLUMN note TEXT,
    ADD CONSTRAINT bulk_upload_jobs_format_check CHECK (file_format IS NULL OR file_format IN ('csv', 'xlsx'));

CREATE INDEX idx_bulk_upload_jobs_status ON bulk_upload_jobs(status) WHERE status IN ('queued', 'running');

-- 'error': the row was rejected (column, value, reason). 'superseded': a later row of the same
-- file had the same company and period and won.
ALTER TABLE bulk_upload_errors
    ADD COLUMN kind VARCHAR(12) NOT NULL DEFAULT 'error',
    ADD CONSTRAINT bulk_upload_errors_kind_check CHECK (kind IN ('error', 'superseded'));
