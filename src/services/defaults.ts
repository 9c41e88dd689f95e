/**
 * Recorded defaults and backtests (issue 15). A default event lives with its company: read with
 * it, recorded or removed by whoever may modify it (checked here for a clear 403, and again by
 * the table's row-level security). Backtests read, under the caller's row-level security, the
 * predictions and defaults the caller can see.
 */
import type { Sql, TxSql } from '../db/pool.js';
import { withUserTx } from '../db/tx.js';
import { canModifyScoped } from '../domain/access.js';
import { forbidden, notFound, validation } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { audit } from '../repositories/audit.js';
import * as companies from '../repositories/companies.js';
import { backtest, fieldNamesOf, type BacktestPrediction, type BacktestReport, type Dataset, type DefaultEvent, type ModelKind } from '../risk/index.js';
import * as events from '../repositories/default-events.js';

interface DefaultEventView {
  id: string;
  company_id: string;
  default_date: string;
  source: string;
  recorded_by: string | null;
  created_at: string;
}

type Row = events.DefaultEventRow;

const view = (r: Row): DefaultEventView => ({ ...r, created_at: new Date(r.created_at).toISOString() });

/** Checks a default event's input; returns the date (YYYY-MM-DD) and the trimmed source. */
function normalizeDefaultInput(body: { date?: unknown; source?: unknown }, today: Date = new Date()): { date: string; source: string } {
  const date = body.date;
  if (typeof date !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(date)) throw validation('date', 'must be a date written YYYY-MM-DD');
  const t = new Date(`${date}T00:00:00Z`);
  if (Number.isNaN(t.getTime()) || t.toISOString().slice(0, 10) !== date) throw validation('date', `${date} is not a calendar date`);
  if (date < '1900-01-01') throw validation('date', 'must be 1900-01-01 or later');
  if (date > today.toISOString().slice(0, 10)) throw validation('date', 'a default cannot be recorded before it happens (the date is in the future)');
  const source = typeof body.source === 'string' ? body.source.trim() : '';
  if (source.length === 0) throw validation('source', 'say where the default is known from (e.g. a rating agency notice or a court filing)');
  if (source.length > 200) throw validation('source', 'must be at most 200 characters');
  return { date, source };
}


/** Predictions (with the model that made them) and default events visible on `tx`, and the backtest over them. */
export async function backtestOn(tx: TxSql | Sql, kind: ModelKind, opts: { asOf?: Date; horizonMonths?: number } = {}): Promise<BacktestReport> {
  const preds = await events.predictionsForBacktest(tx, kind);
  const defaults = await events.defaultDates(tx);
  const p: BacktestPrediction[] = preds.map((r) => ({ ...r, made_at: new Date(r.made_at) }));
  const d: DefaultEvent[] = defaults.map((r) => ({ company_id: r.company_id, default_date: new Date(r.default_date) }));
  return backtest(p, d, { asOf: opts.asOf ?? new Date(), ...(opts.horizonMonths ? { horizonMonths: opts.horizonMonths } : {}) });
}

/**
 * A labelled data set from stored history, for `accunode model train --from-database`: every
 * prediction's ratios, labelled 1 when its company defaulted within 12 months after it and 0 when
 * a full year passed without one (predictions with the year still open, or made after the
 * company's default, are left out). With `tenantId`, only that tenant's organizations' rows.
 */
export async function labelledHistory(sql: Sql, kind: ModelKind, opts: { asOf?: Date; tenantId?: string; horizonMonths?: number } = {}): Promise<{ ds: Dataset; excluded: number }> {
  const names = fieldNamesOf(kind);
  const horizon = opts.horizonMonths ?? 12;
  const asOf = opts.asOf ?? new Date();
  const rows = await events.labelledRatios(sql, kind, names, { horizon, asOf, tenantId: opts.tenantId ?? null });
  const kept = rows.filter((r) => r.label !== null);
  const ds: Dataset = {
    kind,
    fields: names,
    columns: names.map((f) => Float64Array.from(kept, (r) => (r[f] === null ? NaN : Number(r[f])))),
    y: Uint8Array.from(kept, (r) => r.label!),
  };
  return { ds, excluded: rows.length - kept.length };
}

export class DefaultEventService {
  constructor(private readonly d: { sql: Sql }) {}

  async record(p: Principal, companyId: string, body: { date?: unknown; source?: unknown }, ip: string | null): Promise<{ event: DefaultEventView; created: boolean }> {
    const input = normalizeDefaultInput(body);
    return withUserTx(this.d.sql, p.userId, async (tx) => {
      const company = await companies.findCompany(tx, companyId);
      if (!company) throw notFound('company');
      if (!canModifyScoped(p, company)) throw forbidden('only the creator or an admin of its scope records a default of this company');
      const inserted = await events.insertDefaultEvent(tx, { companyId, date: input.date, source: input.source, recordedBy: p.userId });
      if (inserted) {
        await audit(tx, p, { action: 'record_default', table: 'company_default_events', rowId: inserted.id, after: view(inserted) }, ip);
        return { event: view(inserted), created: true };
      }
      // The same default recorded twice: the existing event, unchanged.
      const existing = await events.defaultEventOn(tx, companyId, input.date);
      return { event: view(existing!), created: false };
    });
  }

  async list(p: Principal, companyId: string): Promise<DefaultEventView[]> {
    return withUserTx(this.d.sql, p.userId, async (tx) => {
      if (!(await companies.findCompany(tx, companyId))) throw notFound('company');
      const rows = await events.defaultEventsOf(tx, companyId);
      return rows.map(view);
    });
  }

  backtest(p: Principal, kind: ModelKind, opts: { asOf?: Date } = {}): Promise<BacktestReport> {
    return withUserTx(this.d.sql, p.userId, (tx) => backtestOn(tx, kind, opts));
  }
}
