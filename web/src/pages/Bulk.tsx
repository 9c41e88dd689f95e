import { useEffect, useRef, useState, type DragEvent, type KeyboardEvent } from 'react';
import { api, ApiError, type Job, type Kind } from '../api';
import { Card, ErrorState, PageTitle, Stat, TableWrap } from '../components/ui';
import { download, parseCsv } from '../csv';
import { duration, num } from '../format';
import { Link } from '../router';
import { useAuth } from '../auth';

const ACCEPT = '.csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
const DONE = new Set(['completed', 'failed', 'cancelled']);

/** The job this tab last started, per user, so leaving the page and coming back finds it again. */
const jobKey = (userId: string | undefined) => `accunode.bulk.job.${userId ?? 'anonymous'}`;

export function Bulk() {
  const { user } = useAuth();
  const [kind, setKind] = useState<Kind>('annual');
  const [file, setFile] = useState<File | null>(null);
  const [drag, setDrag] = useState(false);
  const [fileError, setFileError] = useState<string | null>(null);
  const [jobId, setJobIdState] = useState<string | null>(() => sessionStorage.getItem(jobKey(user?.id)));
  const setJobId = (id: string | null) => {
    if (id) sessionStorage.setItem(jobKey(user?.id), id);
    else sessionStorage.removeItem(jobKey(user?.id));
    setJobIdState(id);
  };
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [errorsCsv, setErrorsCsv] = useState<string | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);

  function pick(f: File | undefined | null) {
    setFileError(null);
    if (!f) return;
    if (!/\.(csv|xlsx)$/i.test(f.name)) {
      setFileError(`${f.name}: only .csv and .xlsx files are accepted.`);
      return;
    }
    setFile(f);
  }
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDrag(false);
    pick(e.dataTransfer.files[0]);
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      inputRef.current?.click();
    }
  };

  async function upload() {
    if (!file) {
      setFileError('Choose a CSV or XLSX file first.');
      return;
    }
    setBusy(true);
    setError(null);
    setJob(null);
    setErrorsCsv(null);
    try {
      const form = new FormData();
      form.append('file', file, file.name);
      const r = await api.upload<{ job_id: string }>('/predictions/bulk', form, { type: kind });
      setJobId(r.job_id);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  // Live progress: poll the job until it is finished.
  useEffect(() => {
    if (!jobId) return;
    let live = true;
    let timer: ReturnType<typeof setTimeout>;
    const tick = async () => {
      try {
        const j = await api.get<Job>(`/jobs/${jobId}`);
        if (!live) return;
        setJob(j);
        if (DONE.has(j.status)) {
          if (j.rows_failed > 0) setErrorsCsv(await api.text(`/jobs/${jobId}/errors`));
          return;
        }
      } catch (err) {
        if (!live) return;
        if (err instanceof ApiError && err.status === 401) return;
        // A remembered job that is gone (expired, another user's): forget it quietly.
        if (err instanceof ApiError && err.status === 404) {
          setJobId(null);
          return;
        }
        setError(err);
        return;
      }
      timer = setTimeout(() => void tick(), 500);
    };
    void tick();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [jobId]);

  async function cancel() {
    if (!jobId) return;
    try {
      await api.del(`/jobs/${jobId}`);
    } catch (err) {
      setError(err);
    }
  }

  const total = job?.rows_total ?? null;
  const pctDone = job ? (job.status === 'completed' ? 100 : total ? Math.min(100, Math.round((100 * job.rows_processed) / total)) : 0) : 0;
  const errorRows = errorsCsv ? parseCsv(errorsCsv.trim()) : null;

  return (
    <main id="main" className="page">
      <PageTitle sub="Score a whole file of companies at once; the upload is processed in the background.">Bulk upload</PageTitle>
      <Card title="1. Choose the model and the file" id="bulk-choose">
        <fieldset className="segmented">
          <legend>Model</legend>
          {(['annual', 'quarterly'] as const).map((k) => (
            <label key={k} className={kind === k ? 'on' : ''}>
              <input type="radio" name="bulk-kind" value={k} checked={kind === k} onChange={() => setKind(k)} />
              {k === 'annual' ? 'Annual' : 'Quarterly'}
            </label>
          ))}
        </fieldset>
        <p className="small">
          Template:{' '}
          <a href={`/templates/${kind}-template.csv`} download>
            {kind}-template.csv
          </a>{' '}
          — one row per company and period; the columns are the ratio names; an empty cell is a missing ratio. XLSX with the same header works too.
        </p>
        <div
          className={`dropzone ${drag ? 'drag' : ''}`}
          role="button"
          tabIndex={0}
          aria-describedby="drop-help"
          aria-label={file ? `Selected file ${file.name}. Press Enter to choose another file.` : 'Choose a CSV or XLSX file, or drop it here'}
          onClick={() => inputRef.current?.click()}
          onKeyDown={onKey}
          onDragOver={(e) => {
            e.preventDefault();
            setDrag(true);
          }}
          onDragLeave={() => setDrag(false)}
          onDrop={onDrop}
        >
          <p className="drop-title">{file ? file.name : 'Drop a CSV or XLSX file here'}</p>
          <p id="drop-help" className="muted small">
            {file ? `${num(file.size / 1024, 1)} kB · click or press Enter to choose another` : 'or click / press Enter to choose one'}
          </p>
        </div>
        <input ref={inputRef} id="bulk-file" type="file" accept={ACCEPT} className="sr-only" aria-label="File to upload" tabIndex={-1} onChange={(e) => pick(e.target.files?.[0])} />
        {fileError && (
          <p className="notice error" role="alert">
            {fileError}
          </p>
        )}
        <div className="actions">
          <button type="button" onClick={() => void upload()} disabled={busy || !file || (!!job && !DONE.has(job.status))}>
            {busy ? 'Uploading…' : 'Upload and score'}
          </button>
        </div>
      </Card>
      {error !== null && <ErrorState error={error} />}
      {jobId && (
        <Card title="2. Progress" id="bulk-progress">
          <div className="progress-wrap">
            <div
              className="progress"
              role="progressbar"
              aria-label="Rows processed"
              aria-valuemin={0}
              aria-valuemax={100}
              aria-valuenow={pctDone}
              aria-valuetext={job ? `${job.status}: ${job.rows_processed} of ${total ?? 'unknown'} rows` : 'queued'}
            >
              <div className={`bar ${job?.status ?? ''}`} style={{ width: `${pctDone}%` }} />
            </div>
            <span className="small">{pctDone} %</span>
          </div>
          <p role="status" aria-live="polite" data-testid="job-status" className="job-status">
            {job ? statusText(job) : 'Queued…'}
          </p>
          {job && (
            <div className="stats">
              <Stat label="Rows processed" value={`${num(job.rows_processed, 0)}${total !== null ? ` / ${num(total, 0)}` : ''}`} />
              <Stat label="Succeeded" value={<span data-testid="rows-succeeded">{num(job.rows_succeeded, 0)}</span>} />
              <Stat label="Failed" value={<span data-testid="rows-failed">{num(job.rows_failed, 0)}</span>} />
              <Stat label="Throughput" value={job.throughput_rows_per_second !== null ? `${num(job.throughput_rows_per_second, 0)} rows/s` : '–'} />
              <Stat label={DONE.has(job.status) ? 'Finished' : 'ETA'} value={DONE.has(job.status) ? job.status : duration(job.eta_seconds)} />
            </div>
          )}
          {job && !DONE.has(job.status) && (
            <button type="button" className="secondary" onClick={() => void cancel()}>
              Cancel job
            </button>
          )}
          {job?.note && <p className="muted small">{job.note}</p>}
          {job?.error_message && (
            <p className="notice error" role="alert">
              {job.error_message}
            </p>
          )}
          {job?.status === 'completed' && (
            <p>
              <Link to="/portfolio">See the companies in your portfolio →</Link>
            </p>
          )}
        </Card>
      )}
      {errorRows && errorRows.length > 1 && (
        <Card
          title={`Rows with errors (${errorRows.length - 1}${errorRows.length - 1 >= 500 ? ', first 500 shown' : ''})`}
          id="bulk-errors"
          actions={
            <button type="button" className="secondary" onClick={() => download(`job-${jobId}-errors.csv`, errorsCsv!)}>
              Download errors CSV
            </button>
          }
        >
          <TableWrap label="Rows that could not be scored">
            <table className="table compact" data-testid="error-rows">
              <caption className="sr-only">Rows that could not be scored</caption>
              <thead>
                <tr>
                  {errorRows[0]!.map((h) => (
                    <th scope="col" key={h}>
                      {ERROR_HEADINGS[h] ?? h}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {errorRows.slice(1, 501).map((r, i) => (
                  <tr key={i}>
                    {r.map((c, j) => (
                      <td key={j}>{shownCell(errorRows[0]![j], c)}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        </Card>
      )}
    </main>
  );
}

const ERROR_HEADINGS: Record<string, string> = { line: 'Line', column: 'Column', value: 'Value in the file', reason: 'Problem', kind: 'Kind' };

/**
 * The errors CSV guards cells against spreadsheet formulas with a leading apostrophe (see
 * src/services/bulk/errors-csv.ts); on screen the value is shown as it was in the file.
 */
export function shownCell(column: string | undefined, cell: string): string {
  if (column === 'value' || column === 'reason' || column === 'column') return /^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell;
  if (column === 'kind') return cell === 'superseded' ? 'replaced by a later row' : cell === 'error' ? 'error' : cell;
  return cell;
}

function statusText(j: Job): string {
  switch (j.status) {
    case 'queued':
      return 'Queued: waiting for a worker…';
    case 'running':
      return `Running: ${num(j.rows_processed, 0)} rows processed${j.throughput_rows_per_second ? ` at ${num(j.throughput_rows_per_second, 0)} rows/s` : ''}${j.eta_seconds !== null ? `, about ${duration(j.eta_seconds)} left` : ''}.`;
    case 'completed':
      return `Completed: ${num(j.rows_succeeded, 0)} rows scored, ${num(j.rows_failed, 0)} failed.`;
    case 'failed':
      return `Failed: ${j.error_message ?? 'the job could not finish'}.`;
    case 'cancelled':
      return `Cancelled after ${num(j.rows_processed, 0)} rows.`;
  }
}
