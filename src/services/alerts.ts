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
import * as outbox from '../repositories/alert-outbox.js';
import type { WatchRow } from '../repositories/alert-outbox.js';
import { webhookTargetProblem } from './webhook-target.js';
import { impliedRating, REFERENCE_RATING_SCALE, type RatingGrade } from '../risk/implied-rating.js';

type AlertReason = 'risk_level' | 'implied_rating' | 'pd_move';

interface PredictionChange {
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

interface DispatchResult {
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
    const changes = await outbox.takeChanges(tx, limit);
    if (changes.length === 0) return { changes: 0, alerts: 0, deliveries: [] };
    // The watches whose scope may still read the company (the read policy's rule, for the watcher).
    const watches = await outbox.readableWatches(tx, [...new Set(changes.map((c) => c.company_id))]);
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
    const stored = await outbox.insertAlerts(tx, alerts);
    const hooks = await outbox.activeWebhooks(tx, [...new Set(stored.map((a) => a.scope_id))]);
    const deliveries: string[] = [];
    for (const h of hooks) {
      const groups = new Map<string, Array<(typeof stored)[number]>>();
      for (const a of stored) if (a.scope_id === h.scope_id) groups.set(a.bulk_job_id ?? '', [...(groups.get(a.bulk_job_id ?? '') ?? []), a]);
      for (const [job, group] of groups) {
        const ids = group.map((a) => a.id);
        const rows = await outbox.alertsForBody(tx, ids);
        const body = JSON.stringify({ type: 'alerts', bulk_job_id: job || null, alerts: rows });
        deliveries.push(await outbox.insertDelivery(tx, h.id, job || null, group.length, body));
      }
    }
    return { changes: changes.length, alerts: stored.length, deliveries };
  })) as DispatchResult;
}

class WebhookFailed extends Error {}

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
  const d = await outbox.deliveryToSend(adminSql, deliveryId);
  if (!d || d.status === 'delivered' || !d.is_active) return 'skipped';
  // The name may have been re-pointed since the webhook was set: check again, and never retry a refusal.
  const problem = await webhookTargetProblem(d.url, { allowPrivate: opts.allowPrivateTargets ?? false });
  if (problem) {
    await outbox.refuseDelivery(adminSql, d.id, problem);
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
  await outbox.recordAttempt(adminSql, d.id, status, error, opts.final ?? false);
  if (error !== null) throw new WebhookFailed(error);
  return 'delivered';
}
