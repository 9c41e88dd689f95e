/**
 * Alerts on watched companies (migration 0070): the rules, turning the outbox of changed
 * predictions into alerts and webhook deliveries, and delivering one signed webhook.
 *
 * The dispatch and the deliveries run as the owner (the worker's admin connection): the outbox
 * and the webhook secrets are closed to the application roles. Who receives an alert is the
 * watch's scope, and only while that scope may still read the company.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Sql } from '../db/pool.js';
import { webhookTargetProblem } from './webhook-target.js';
import { impliedRating, REFERENCE_RATING_SCALE, type RatingGrade } from '../risk/implied-rating.js';

export type AlertReason = 'risk_level' | 'implied_rating' | 'pd_move';

export interface PredictionChange {
  old_probability: number | null;
  old_risk_level: string | null;
  new_probability: number;
  new_risk_level: string;
}

/**
 * Why a change deserves an alert for a watch with this PD threshold: the risk level changed, the
 * implied rating changed, or the PD moved by more than the threshold. A company's first
 * prediction has nothing to compare with and raises none.
 */
export function alertReasons(c: PredictionChange, pdThreshold: number, scale: readonly RatingGrade[] = REFERENCE_RATING_SCALE): AlertReason[] {
  if (c.old_probability === null || c.old_risk_level === null) return [];
  const out: AlertReason[] = [];
  if (c.old_risk_level !== c.new_risk_level) out.push('risk_level');
  if (impliedRating(c.old_probability, scale) !== impliedRating(c.new_probability, scale)) out.push('implied_rating');
  // Rounded to the column's precision so 0.0100000001 of float noise is not "more than 0.01".
  if (Math.round(Math.abs(c.new_probability - c.old_probability) * 1e6) > Math.round(pdThreshold * 1e6)) out.push('pd_move');
  return out;
}

/** A new webhook secret (shown to its owner once). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export const SIGNATURE_HEADER = 'x-accunode-signature';
export const TIMESTAMP_HEADER = 'x-accunode-timestamp';

/**
 * The signature of a delivery: HMAC-SHA256 over "<timestamp>.<body>" with the webhook's secret,
 * hex, as "sha256=<hex>". The timestamp is signed too so a receiver can refuse old replays.
 */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** What a receiver does to check a delivery (constant-time comparison). */
export function verifyWebhook(secret: string, timestamp: string, body: string, signature: string): boolean {
  const want = Buffer.from(signWebhook(secret, timestamp, body));
  const got = Buffer.from(signature);
  return want.length === got.length && timingSafeEqual(want, got);
}

interface ChangeRow extends PredictionChange {
  id: string;
  kind: 'annual' | 'quarterly';
  prediction_id: string;
  company_id: string;
  reporting_year: string;
  reporting_quarter: string | null;
  bulk_job_id: string | null;
}

interface WatchRow {
  id: string;
  company_id: string;
  access_level: 'personal' | 'organization';
  organization_id: string | null;
  scope_id: string;
  pd_threshold: number;
}

export interface DispatchResult {
  changes: number;
  alerts: number;
  /** webhook_deliveries rows created, to be queued for delivery. */
  deliveries: string[];
}

/**
 * Takes up to `limit` changes from the outbox (skipping rows another dispatcher holds), stores
 * the alerts their watches' rules raise, and one webhook delivery per recipient and batch (a
 * bulk upload's alerts share one delivery; other alerts are batched per dispatch), in one
 * transaction: a crash leaves the changes in the outbox for the next run. Implied ratings are
 * read on `scale` (IMPLIED_RATING_SCALE), the grades the API and the web app show.
 */
export async function dispatchAlerts(adminSql: Sql, limit = 5000, scale: readonly RatingGrade[] = REFERENCE_RATING_SCALE): Promise<DispatchResult> {
  return (await adminSql.begin(async (tx) => {
    const changes = await tx<ChangeRow[]>`
      delete from prediction_changes where id in (
        select id from prediction_changes order by id limit ${limit} for update skip locked)
      returning id::text, kind, prediction_id, company_id, reporting_year, reporting_quarter, old_probability, old_risk_level,
                new_probability, new_risk_level, bulk_job_id`;
    if (changes.length === 0) return { changes: 0, alerts: 0, deliveries: [] };
    // The watches whose scope may still read the company (the read policy's rule, for the watcher).
    const watches = await tx<WatchRow[]>`
      select w.id, w.company_id, w.access_level, w.organization_id, w.scope_id, w.pd_threshold
      from watches w join companies c on c.id = w.company_id
      left join users u on w.access_level = 'personal' and u.id = w.created_by
      left join organizations wo on wo.id = w.organization_id
      left join organizations co on co.id = c.organization_id
      where w.company_id = any(${[...new Set(changes.map((c) => c.company_id))]}::uuid[])
        and (w.access_level = 'organization' or u.is_active)
        and (c.access_level = 'system'
          or (c.access_level = 'personal' and w.access_level = 'personal' and c.created_by = w.created_by)
          or (c.access_level = 'organization' and (
                (w.access_level = 'organization' and c.organization_id = w.organization_id)
             or (w.access_level = 'personal' and (u.role = 'super_admin' or u.organization_id = c.organization_id
                 or (u.role = 'tenant_admin' and u.tenant_id = co.tenant_id))))))`;
    const byCompany = new Map<string, WatchRow[]>();
    for (const w of watches) byCompany.set(w.company_id, [...(byCompany.get(w.company_id) ?? []), w]);
    const alerts: Array<Record<string, unknown>> = [];
    for (const c of changes) {
      for (const w of byCompany.get(c.company_id) ?? []) {
        const reasons = alertReasons(c, Number(w.pd_threshold), scale);
        if (reasons.length === 0) continue;
        alerts.push({
          watch_id: w.id, access_level: w.access_level, organization_id: w.organization_id, scope_id: w.scope_id,
          company_id: c.company_id, kind: c.kind, prediction_id: c.prediction_id, reporting_year: c.reporting_year,
          reporting_quarter: c.reporting_quarter, reasons, old_probability: c.old_probability, new_probability: c.new_probability,
          old_risk_level: c.old_risk_level, new_risk_level: c.new_risk_level,
          old_rating: c.old_probability === null ? null : impliedRating(Number(c.old_probability), scale), new_rating: impliedRating(Number(c.new_probability), scale),
          bulk_job_id: c.bulk_job_id,
        });
      }
    }
    if (alerts.length === 0) return { changes: changes.length, alerts: 0, deliveries: [] };
    const stored = await tx<Array<{ id: string; scope_id: string; bulk_job_id: string | null; company_id: string; created_at: Date }>>`
      insert into alerts ${tx(alerts as never, Object.keys(alerts[0]!) as never)}
      returning id, scope_id, bulk_job_id, company_id, created_at`;
    const hooks = await tx<Array<{ id: string; scope_id: string }>>`
      select id, scope_id from webhooks where is_active and scope_id = any(${[...new Set(stored.map((a) => a.scope_id))]}::uuid[])`;
    const deliveries: string[] = [];
    for (const h of hooks) {
      const groups = new Map<string, Array<(typeof stored)[number]>>();
      for (const a of stored) if (a.scope_id === h.scope_id) groups.set(a.bulk_job_id ?? '', [...(groups.get(a.bulk_job_id ?? '') ?? []), a]);
      for (const [job, group] of groups) {
        const ids = group.map((a) => a.id);
        const rows = await tx<Array<Record<string, unknown>>>`
          select a.id, a.kind, a.company_id, c.symbol, c.name, a.prediction_id, a.reporting_year, a.reporting_quarter, a.reasons,
                 a.old_probability, a.new_probability, a.old_risk_level, a.new_risk_level, a.old_rating, a.new_rating, a.created_at
          from alerts a join companies c on c.id = a.company_id where a.id = any(${ids}::uuid[]) order by a.created_at, a.id`;
        const body = JSON.stringify({ type: 'alerts', bulk_job_id: job || null, alerts: rows });
        const [d] = await tx<{ id: string }[]>`
          insert into webhook_deliveries (webhook_id, bulk_job_id, alert_count, body)
          values (${h.id}, ${job || null}, ${group.length}, ${body}) returning id`;
        deliveries.push(d!.id);
      }
    }
    return { changes: changes.length, alerts: stored.length, deliveries };
  })) as DispatchResult;
}

export class WebhookFailed extends Error {}

/**
 * One attempt at a delivery: POSTs the stored body, signed, and records the outcome. Throws
 * WebhookFailed on a refusal or a network error (the queue retries with back-off); `final`
 * marks the delivery failed for good.
 */
export async function deliverWebhook(
  adminSql: Sql,
  deliveryId: string,
  opts: { final?: boolean; timeoutMs?: number; now?: () => Date; allowPrivateTargets?: boolean } = {},
): Promise<'delivered' | 'skipped'> {
  const [d] = await adminSql<Array<{ id: string; body: string; status: string; url: string; secret: string; is_active: boolean }>>`
    select d.id, d.body, d.status, w.url, w.secret, w.is_active from webhook_deliveries d join webhooks w on w.id = d.webhook_id where d.id = ${deliveryId}`;
  if (!d || d.status === 'delivered' || !d.is_active) return 'skipped';
  // The name may have been re-pointed since the webhook was set: check again, and never retry a refusal.
  const problem = await webhookTargetProblem(d.url, { allowPrivate: opts.allowPrivateTargets ?? false });
  if (problem) {
    await adminSql`
      update webhook_deliveries set attempts = attempts + 1, last_attempt_at = CURRENT_TIMESTAMP, last_status_code = null,
        last_error = ${`not sent: the webhook's URL ${problem}`.slice(0, 500)}, status = 'failed'
      where id = ${d.id}`;
    return 'skipped';
  }
  const timestamp = String(Math.floor((opts.now?.() ?? new Date()).getTime() / 1000));
  let status: number | null = null;
  let error: string | null = null;
  try {
    const res = await fetch(d.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'AccuNode-Webhooks/1', [SIGNATURE_HEADER]: signWebhook(d.secret, timestamp, d.body), [TIMESTAMP_HEADER]: timestamp, 'x-accunode-delivery': d.id },
      body: d.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
    status = res.status;
    await res.body?.cancel().catch(() => {});
    if (res.status < 200 || res.status >= 300) error = `the receiver answered ${res.status}`;
  } catch (err) {
    error = `could not reach the receiver: ${(err as Error).message}`.slice(0, 500);
  }
  await adminSql`
    update webhook_deliveries set attempts = attempts + 1, last_attempt_at = CURRENT_TIMESTAMP, last_status_code = ${status},
      last_error = ${error}, status = ${error === null ? 'delivered' : opts.final ? 'failed' : 'pending'},
      delivered_at = ${error === null ? adminSql`CURRENT_TIMESTAMP` : null}
    where id = ${d.id}`;
  if (error !== null) throw new WebhookFailed(error);
  return 'delivered';
}
