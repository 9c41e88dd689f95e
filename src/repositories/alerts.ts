// Watches, alerts, webhooks and their deliveries as the caller sees them (row-level security,
// migration 0070). The webhook secret is write-only for app_user: nothing here selects it.
import type { TxSql } from '../db/pool.js';

export interface WatchRow { id: string; company_id: string; symbol: string; name: string; access_level: string; organization_id: string | null; pd_threshold: number; created_at: Date }

export const listWatches = (tx: TxSql) => tx<WatchRow[]>`
  select w.id, w.company_id, c.symbol, c.name, w.access_level, w.organization_id, w.pd_threshold, w.created_at
  from watches w join companies c on c.id = w.company_id order by c.symbol, w.access_level`;

export async function companyVisible(tx: TxSql, companyId: string): Promise<boolean> {
  const [r] = await tx`select 1 from companies where id = ${companyId}`;
  return !!r;
}

export async function insertWatch(tx: TxSql, w: { company_id: string; access_level: string; organization_id: string | null; created_by: string; pd_threshold: number }): Promise<string | null> {
  const [r] = await tx<{ id: string }[]>`
    insert into watches ${tx(w)} on conflict (scope_id, company_id) do nothing returning id`;
  return r?.id ?? null;
}

export async function deleteWatch(tx: TxSql, id: string): Promise<boolean> {
  return (await tx`delete from watches where id = ${id}`).count === 1;
}

export const listAlerts = (tx: TxSql, o: { unread: boolean; limit: number }) => tx<Array<Record<string, unknown>>>`
  select a.id, a.kind, a.company_id, c.symbol, c.name, a.prediction_id, a.reporting_year, a.reporting_quarter, a.reasons,
         a.old_probability, a.new_probability, a.old_risk_level, a.new_risk_level, a.old_rating, a.new_rating,
         a.access_level, a.bulk_job_id, a.read_at, a.created_at
  from alerts a join companies c on c.id = a.company_id
  where true ${o.unread ? tx`and a.read_at is null` : tx``}
  order by a.created_at desc, a.id desc limit ${o.limit}`;

export async function unreadCount(tx: TxSql): Promise<number> {
  const [r] = await tx<{ n: number }[]>`select count(*)::int as n from alerts where read_at is null`;
  return r!.n;
}

export async function markRead(tx: TxSql, ids: string[] | 'all'): Promise<number> {
  const res = ids === 'all'
    ? await tx`update alerts set read_at = CURRENT_TIMESTAMP where read_at is null and company_id in (select id from companies)`
    : await tx`update alerts set read_at = CURRENT_TIMESTAMP where read_at is null and id = any(${ids}::uuid[]) and company_id in (select id from companies)`;
  return res.count;
}

export interface WebhookRow { id: string; access_level: string; organization_id: string | null; url: string; is_active: boolean; created_at: Date; updated_at: Date }

export const listWebhooks = (tx: TxSql) => tx<WebhookRow[]>`
  select id, access_level, organization_id, url, is_active, created_at, updated_at from webhooks order by access_level, created_at`;

/** Replaces the scope's webhook (a new secret each time); null when the caller may not. */
export async function replaceWebhook(tx: TxSql, w: { access_level: string; organization_id: string | null; created_by: string; url: string; secret: string }): Promise<WebhookRow> {
  const scope = w.access_level === 'organization' ? w.organization_id : w.created_by;
  await tx`delete from webhooks where scope_id = ${scope}`;
  const [r] = await tx<WebhookRow[]>`
    insert into webhooks ${tx(w)} returning id, access_level, organization_id, url, is_active, created_at, updated_at`;
  return r!;
}

export async function deleteWebhook(tx: TxSql, id: string): Promise<boolean> {
  return (await tx`delete from webhooks where id = ${id}`).count === 1;
}

export async function webhookVisible(tx: TxSql, id: string): Promise<boolean> {
  const [r] = await tx`select 1 from webhooks where id = ${id}`;
  return !!r;
}

export const listDeliveries = (tx: TxSql, webhookId: string, limit: number) => tx<Array<Record<string, unknown>>>`
  select id, bulk_job_id, alert_count, status, attempts, last_status_code, last_error, created_at, last_attempt_at, delivered_at
  from webhook_deliveries where webhook_id = ${webhookId} order by created_at desc, id desc limit ${limit}`;
