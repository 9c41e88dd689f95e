/**
 * Exports of the lists a user can filter (predictions, a company's history with explanations,
 * the portfolio), as CSV or XLSX, streamed: rows come from a postgres.js cursor inside the
 * caller's row-level-security transaction and are written to the response as they arrive, the
 * cursor waiting whenever the client reads slower than the database answers, so memory holds one
 * batch whatever the export's length.
 *
 * Columns carry the bulk upload's names (values.ts requiredColumns/COMPANY_COLUMNS), so a
 * prediction export uploads again unchanged; the outputs after them are columns the upload
 * ignores. Text cells starting with = + - @ TAB or CR get a leading apostrophe (OWASP "CSV
 * injection"), which the bulk upload removes again (values.ts unescapeFormulaText).
 */
import { PassThrough, type Writable } from 'node:stream';
import ExcelJS from 'exceljs';
import type { Sql, TxSql } from '../db/pool.js';
import { withUserTx } from '../db/tx.js';
import { impliedRating, REFERENCE_RATING_SCALE, type RatingGrade } from '../risk/implied-rating.js';
import type { Principal } from '../domain/principal.js';
import { fieldNamesOf, type Explanation, type ModelKind } from '../risk/index.js';
import { OUTPUT_FIELDS, FINAL } from '../repositories/predictions.js';
import { portfolioExportQuery, predictionExportQuery, type ExportRow, type PredictionExportFilter } from '../repositories/exports.js';
import type { PortfolioFilter } from '../repositories/portfolio.js';
import { safeCell } from './bulk/errors-csv.js';
import { requiredColumns } from './bulk/values.js';

type ExportFormat = 'csv' | 'xlsx';
type ExportCell = string | number | null;

/**
 * A download nobody reads from for this long is ended (its transaction holds a pooled
 * connection). A client that vanished while the response was backpressured is not always
 * noticed: with the socket neither read nor written, the server may never see it close.
 */
const EXPORT_STALL_MS = 60_000;

/** Rows fetched from the cursor per round trip. */
const EXPORT_BATCH_ROWS = 500;
/** One sheet holds at most this many data rows (XLSX's 1,048,576 rows, less the header). */
const XLSX_SHEET_ROWS = 1_048_575;

/** A text cell as a spreadsheet must show it: never evaluated as a formula. */
function formulaSafe(s: string): string {
  return /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
}

/** Writes header and rows in one format to a stream, waiting while the reader is behind. */
interface Sink {
  row(cells: readonly ExportCell[]): void;
  /** Resolves once what was written has been taken by the reader (or the reader went away). */
  drained(): Promise<void>;
  end(): Promise<void>;
}

/** Whether the sink drained within `ms` (false: the reader took nothing for that long). */
async function drainedWithin(sink: Sink, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([sink.drained().then(() => true as const), stalled]);
  } finally {
    clearTimeout(timer);
  }
}

function waitForDrain(out: Writable): Promise<void> {
  if (!out.writableNeedDrain || out.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
  });
}

function csvSink(out: PassThrough, header: readonly string[]): Sink {
  // A byte-order mark so spreadsheet programs read the file as UTF-8 (the bulk upload skips it).
  out.write(`\uFEFF${header.join(',')}\r\n`);
  return {
    row: (cells) => {
      out.write(cells.map(safeCell).join(',') + '\r\n');
    },
    drained: () => waitForDrain(out),
    end: async () => {
      out.end();
    },
  };
}

/** Bytes of sheet XML the zip stream may hold unprocessed before rows wait for it. */
const XLSX_MAX_IN_FLIGHT = 4 * 1024 * 1024;

/**
 * exceljs 4 passes a sheet's XML on to its zip stream without waiting for it (the sheet's
 * StreamBuf ignores write() returning false), so a 1,000,000-row export grew by 200 MB outside
 * the heap. Its `_pipe(chunk)` (lib/utils/stream-buf.js) resolves once the zip has taken the
 * chunk: counting chunks between call and resolution gives the backlog rows must wait for.
 */
function trackInFlight(ws: ExcelJS.Worksheet): () => number {
  let inFlight = 0;
  const stream = (ws as unknown as { stream?: { _pipe?: (chunk: { length: number }) => Promise<void> } }).stream;
  const pipe = stream?._pipe?.bind(stream);
  if (!stream || !pipe) return () => 0;
  stream._pipe = async (chunk) => {
    const n = chunk.length;
    inFlight += n;
    try {
      await pipe(chunk);
    } finally {
      inFlight -= n;
    }
  };
  return () => inFlight;
}

function xlsxSink(out: PassThrough, header: readonly string[], sheetName: string): Sink {
  // No shared strings and no styles: both would be kept in memory until the end.
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: out, useSharedStrings: false, useStyles: false });
  let sheets = 0;
  let rowsInSheet = 0;
  let ws: ExcelJS.Worksheet;
  let inFlight: () => number = () => 0;
  const newSheet = () => {
    sheets++;
    ws = wb.addWorksheet(sheets === 1 ? sheetName : `${sheetName} ${sheets}`);
    inFlight = trackInFlight(ws);
    ws.addRow([...header]).commit();
    rowsInSheet = 0;
  };
  newSheet();
  return {
    row: (cells) => {
      if (rowsInSheet === XLSX_SHEET_ROWS) {
        ws.commit();
        newSheet();
      }
      ws.addRow(cells.map((c) => (typeof c === 'string' ? formulaSafe(c) : c))).commit();
      rowsInSheet++;
    },
    drained: async () => {
      while (!out.destroyed && inFlight() > XLSX_MAX_IN_FLIGHT) await new Promise((r) => setTimeout(r, 5));
      await waitForDrain(out);
    },
    end: async () => {
      ws.commit();
      await wb.commit();
    },
  };
}

export interface ExportStream {
  stream: PassThrough;
  contentType: string;
  fileName: string;
  /** Settles when the transaction has ended (the export finished, failed or was abandoned). */
  done: Promise<void>;
}

export interface ExportStats {
  rows: number;
  /** The most rows fetched but not yet taken by the reader at any moment (what memory holds). */
  maxBufferedRows: number;
}

const CONTENT_TYPE: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

/**
 * Runs `query` under the caller's row-level security and streams its rows, mapped to cells, as
 * one file. An error after the first byte ends the stream with that error (the client sees a
 * truncated download, never a file that looks complete).
 */
export function streamExport(
  sql: Sql,
  who: Principal,
  opts: {
    format: ExportFormat;
    header: readonly string[];
    name: string;
    query: (tx: TxSql) => { cursor(n: number): AsyncIterable<ExportRow[]>; cancel(): unknown };
    cells: (r: ExportRow) => ExportCell[];
    onStats?: (s: ExportStats) => void;
    stallMs?: number;
  },
): ExportStream {
  const out = new PassThrough();
  const stats: ExportStats = { rows: 0, maxBufferedRows: 0 };
  const stallMs = opts.stallMs ?? EXPORT_STALL_MS;
  const done = withUserTx(sql, who.userId, async (tx) => {
    const sink = opts.format === 'csv' ? csvSink(out, opts.header) : xlsxSink(out, opts.header, opts.name.slice(0, 31));
    const q = opts.query(tx);
    // A client that leaves while the database is still looking for the next rows (a sort or a
    // scan before the first batch can take seconds) would otherwise hold the transaction and its
    // connection until the statement ends: cancel it. Between batches the backend is waiting for
    // us, and PostgreSQL ignores a cancel then; the loop below stops at the next batch instead.
    const abandon = () => void Promise.resolve(q.cancel()).catch(() => {});
    out.once('close', abandon);
    try {
      for await (const batch of q.cursor(EXPORT_BATCH_ROWS)) {
        // The client went away: stop reading, so the transaction ends now.
        if (out.destroyed) return;
        stats.maxBufferedRows = Math.max(stats.maxBufferedRows, batch.length);
        for (const r of batch) sink.row(opts.cells(r));
        stats.rows += batch.length;
        if (!(await drainedWithin(sink, stallMs))) {
          out.destroy(new Error(`the download stalled: nothing was read for ${Math.round(stallMs / 1000)} s`));
          return;
        }
      }
      if (!out.destroyed) await sink.end();
    } finally {
      out.off('close', abandon);
    }
  }).then(
    () => opts.onStats?.(stats),
    (err: unknown) => {
      out.destroy(err instanceof Error ? err : new Error(String(err)));
    },
  );
  const stamp = new Date().toISOString().slice(0, 10);
  return { stream: out, contentType: CONTENT_TYPE[opts.format], fileName: `${opts.name}-${stamp}.${opts.format}`, done };
}

const num = (v: unknown): number | null => (v === null || v === undefined || v === '' ? null : Number(v));
const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const iso = (v: unknown): string | null => (v === null || v === undefined ? null : new Date(v as string).toISOString());

/** The columns of a prediction export: the bulk upload's, then the outputs (ignored by an upload). */
export function predictionExportColumns(kind: ModelKind, explain: boolean): string[] {
  const cols = [...requiredColumns(kind), 'market_cap', 'sector', 'country', 'exchange', ...OUTPUT_FIELDS[kind], 'implied_rating',
    'model_name', 'model_version', 'access_level', 'created_at', 'prediction_id', 'company_id'];
  if (explain) cols.push('score', 'score_band', 'completeness', ...fieldNamesOf(kind).map((f) => `${f}_log_odds`));
  return cols;
}

export function predictionExportCells(kind: ModelKind, r: ExportRow, explanation?: Explanation, scale: readonly RatingGrade[] = REFERENCE_RATING_SCALE): ExportCell[] {
  const cells: ExportCell[] = [text(r.company_symbol), text(r.company_name), text(r.reporting_year)];
  if (kind === 'quarterly') cells.push(text(r.reporting_quarter));
  for (const f of fieldNamesOf(kind)) cells.push(num(r[f]));
  cells.push(num(r.company_market_cap), text(r.company_sector), text(r.company_country), text(r.company_exchange));
  for (const f of OUTPUT_FIELDS[kind]) cells.push(f === 'risk_level' ? text(r[f]) : num(r[f]));
  const pd = num(r[FINAL[kind]]);
  cells.push(pd === null ? null : impliedRating(pd, scale), text(r.model_name), text(r.model_version), text(r.access_level), iso(r.created_at), text(r.id), text(r.company_id));
  if (explanation) {
    cells.push(explanation.score, explanation.score_band, explanation.completeness);
    const by = new Map(explanation.contributions.map((c) => [c.field, c.log_odds]));
    for (const f of fieldNamesOf(kind)) cells.push(by.get(f) ?? null);
  }
  return cells;
}

export const PORTFOLIO_EXPORT_COLUMNS = [
  'company_symbol', 'company_name', 'market_cap', 'sector', 'country', 'exchange', 'access_level',
  'annual_reporting_year', 'annual_probability', 'annual_risk_level', 'annual_implied_rating',
  'quarterly_reporting_year', 'quarterly_reporting_quarter', 'quarterly_probability', 'quarterly_risk_level', 'quarterly_implied_rating',
  'company_id',
];

export function portfolioExportCells(r: ExportRow, scale: readonly RatingGrade[] = REFERENCE_RATING_SCALE): ExportCell[] {
  const a = num(r.annual_probability);
  const q = num(r.quarterly_probability);
  return [
    text(r.symbol), text(r.name), num(r.market_cap), text(r.sector), text(r.country), text(r.exchange), text(r.access_level),
    text(r.annual_year), a, text(r.annual_risk_level), a === null ? null : impliedRating(a, scale),
    text(r.quarterly_year), text(r.quarterly_quarter), q, text(r.quarterly_risk_level), q === null ? null : impliedRating(q, scale),
    text(r.id),
  ];
}

export class ExportService {
  constructor(private readonly d: { sql: Sql; explain: (kind: ModelKind, values: Record<string, unknown>) => Explanation | undefined; stallMs?: number; ratingScale?: readonly RatingGrade[] }) {}

  /** IMPLIED_RATING_SCALE: the same grades the API and the web app show. */
  private get scale(): readonly RatingGrade[] {
    return this.d.ratingScale ?? REFERENCE_RATING_SCALE;
  }

  predictions(who: Principal, kind: ModelKind, f: PredictionExportFilter, opts: { format: ExportFormat; explain: boolean; onStats?: (s: ExportStats) => void }): ExportStream {
    return streamExport(this.d.sql, who, {
      format: opts.format,
      header: predictionExportColumns(kind, opts.explain),
      name: `${kind}-predictions`,
      query: (tx) => predictionExportQuery(tx, kind, f),
      cells: (r) => predictionExportCells(kind, r, opts.explain ? this.d.explain(kind, r) : undefined, this.scale),
      ...(opts.onStats ? { onStats: opts.onStats } : {}),
      ...(this.d.stallMs ? { stallMs: this.d.stallMs } : {}),
    });
  }

  portfolio(who: Principal, f: PortfolioFilter, opts: { format: ExportFormat; onStats?: (s: ExportStats) => void }): ExportStream {
    return streamExport(this.d.sql, who, {
      format: opts.format,
      header: PORTFOLIO_EXPORT_COLUMNS,
      name: 'portfolio',
      query: (tx) => portfolioExportQuery(tx, f),
      cells: (r) => portfolioExportCells(r, this.scale),
      ...(opts.onStats ? { onStats: opts.onStats } : {}),
      ...(this.d.stallMs ? { stallMs: this.d.stallMs } : {}),
    });
  }
}
