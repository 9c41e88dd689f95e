// The owner's side of alerts (migration 0070): the outbox of changed predictions, the watches
// that may still read each company, the alerts stored from them, and webhook deliveries with
// their secrets (closed to the application roles). Run by the worker's dispatch and deliveries.
import type { Sql, TxSql } from '../db/pool.js';

export interface OutboxChange {
  id: string;
  kind: 'annual' | 'quarterly';
  prediction_id: string;
  company_id: string;
  reporting_year: string;
  reporting_quarter: string | null;
  old_probability: number | null;
  old_risk_level: string | null;
  new_probability: number;
  new_risk_level: string;
  bulk_job_id: string | null;
}

export interface WatchRow {
  id: string;
  company_id: string;
  access_level: 'personal' | 'organization';
  organization_id: string | null;
  scope_id: string;
  pd_threshold: number;
}

/** Takes up to `limit` changes off the outbox, skipping rows another dispatcher holds. */
export function takeChanges(tx: TxSql, limit: number) {
  return tx<OutboxChange[]>`
      delete from prediction_changes where id in (
        select id from prediction_changes order by id limit ${limit} for update skip locked)
      returning id::text, kind, prediction_id, company_id, reporting_year, reporting_quarter, old_probability, old_risk_level,
                new_probability, new_risk_level, bulk_job_id`;
}

/** The watches of these companies whose scope may still read the company (the read policy's rule, for the watcher). */
export function readableWatches(tx: TxSql, companyIds: string[]) {
  return tx<WatchRow[]>`
      select w.id, w.company_id, w.access_level, w.organization_id, w.scope_id, w.pd_threshold
      from watches w join companies c on c.id = w.company_id
      left join users u on w.access_level = 'personal' and u.id = w.created_by
      left join organizations wo on wo.id = w.organization_id
      left join organizations co on co.id = c.organization_id
      where w.company_id = any(${companyIds}::uuid[])
        and (w.access_level = 'organization' or u.is_active)
        and (c.access_level = 'system'
          or (c.access_level = 'personal' and w.access_level = 'personal' and c.created_by = w.created_by)
          or (c.access_level = 'organization' and (
                (w.access_level = 'organization' and c.organization_id = w.organization_id)
             or (w.access_level = 'personal' and (u.role = 'super_admin' or u.organization_id = c.organization_id
                 or (u.role = 'tenant_admin' and u.tenant_id = co.tenant_id))))))`;
}

export function insertAlerts(tx: TxSql, alerts: Array<Record<string, unknown>>) {
  return tx<Array<{ id: string; scope_id: string; bulk_job_id: string | null; company_id: string; created_at: Date }>>`
      insert into alerts ${tx(alerts as never, Object.keys(alerts[0]!) as never)}
      returning id, scope_id, bulk_job_id, company_id, created_at`;
}

export function activeWebhooks(tx: TxSql, scopeIds: string[]) {
  return tx<Array<{ id: string; scope_id: string }>>`
      select id, scope_id from webhooks where is_active and scope_id = any(${scopeIds}::uuid[])`;
}

/** The alerts a delivery carries, as its body lists them. */
export function alertsForBody(tx: TxSql, ids: string[]) {
  return tx<Array<Record<string, unknown>>>`
          select a.id, a.kind, a.company_id, c.symbol, c.name, a.prediction_id, a.reporting_year, a.reporting_quarter, a.reasons,
                 a.old_probability, a.new_probability, a.old_risk_level, a.new_risk_level, a.old_rating, a.new_rating, a.created_at
          from alerts a join companies c on c.id = a.company_id where a.id = any(${ids}::uuid[]) order by a.created_at, a.id`;
}

export async function insertDelivery(tx: TxSql, webhookId: string, bulkJobId: string | null, alertCount: number, body: string): Promise<string> {
  const [d] = await tx<{ id: string }[]>`
    insert into webhook_deliveries (webhook_id, bulk_job_id, alert_count, body)
    values (${webhookId}, ${bulkJobId}, ${alertCount}, ${body}) returning id`;
  return d!.id;
}

export async function deliveryToSend(adminSql: Sql, deliveryId: string) {
  const [d] = await adminSql<Array<{ id: string; body: string; status: string; url: string; secret: string; is_active: boolean }>>`
    select d.id, d.body, d.status, w.url, w.secret, w.is_active from webhook_deliveries d join webhooks w on w.id = d.webhook_id where d.id = ${deliveryId}`;
  return d ?? null;
}

/** A delivery not sent because its URL became unacceptable: failed for good, never retried. */
export async function refuseDelivery(adminSql: Sql, id: string, problem: string): Promise<void> {
  await adminSql`
    update webhook_deliveries set attempts = attempts + 1, last_attempt_at = CURRENT_TIMESTAMP, last_status_code = null,
      last_error = ${`not sent: the webhook's URL ${problem}`.slice(0, 500)}, status = 'failed'
    where id = ${id}`;
}

export async function recordAttempt(adminSql: Sql, id: string, status: number | null, error: string | null, final: boolean): Promise<void> {
  await adminSql`
    update webhook_deliveries set attempts = attempts + 1, last_attempt_at = CURRENT_TIMESTAMP, last_status_code = ${status},
      last_error = ${error}, status = ${error === null ? 'delivered' : final ? 'failed' : 'pending'},
      delivered_at = ${error === null ? adminSql`CURRENT_TIMESTAMP` : null}
    where id = ${id}`;
}
