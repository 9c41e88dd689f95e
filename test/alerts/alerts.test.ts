// Watch lists, alerts and webhooks against the real PostgreSQL and Redis: row-level security
// per role, the alert rules, the create path's trigger capturing only watched companies, the
// inbox, and signed webhook deliveries retried by a real BullMQ worker against a local receiver.
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorldApp, engineOnce, type WorldApp } from '../helpers/app.js';
import { TEST_REDIS_URL } from '../helpers/env.js';
import type { UserKey } from '../helpers/fixtures.js';
import { tmpDir } from '../bulk/helpers.js';
import { alertReasons, dispatchAlerts, signWebhook, verifyWebhook } from '../../src/services/alerts.js';
import { alertJobs } from '../../src/jobs/alerts.js';
import { jobOptions } from '../../src/jobs/catalogue.js';
import { createProcessor } from '../../src/jobs/processor.js';
import { createQueueConnection } from '../../src/queue/connection.js';
import { createBulkJob } from '../../src/services/bulk/submit.js';
import { runBulkJob } from '../../src/services/bulk/pipeline.js';

const LOW = { long_term_debt_to_total_capital: 20, total_debt_to_ebitda: 1, net_income_margin: 15, ebit_to_interest_expense: 20, return_on_assets: 10 };
const HIGH = { long_term_debt_to_total_capital: 85, total_debt_to_ebitda: 9, net_income_margin: -12, ebit_to_interest_expense: 0.4, return_on_assets: -6 };

let h: WorldApp;
let connection: Redis;
let queue: Queue;
let worker: Worker;
const prefix = `{accunode-t-${randomBytes(4).toString('hex')}}`;
const stop = new AbortController();

// A local receiver: answers with the next status of `plan` (then 200), records every request.
let server: Server;
let receiverUrl = '';
let plan: number[] = [];
const received: Array<{ headers: Record<string, string | string[] | undefined>; body: string; status: number }> = [];
let onRequest: (() => void) | null = null;

beforeAll(async () => {
  // The receiver is on loopback, which only a deployment that allows private targets may use.
  h = await createWorldApp(['omA1', 'omA1b', 'omA2', 'oaA1', 'taA', 'uA', 'omB1'], { webhookAllowPrivateTargets: true });
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const status = plan.shift() ?? 200;
      received.push({ headers: req.headers, body, status });
      res.writeHead(status).end();
      onRequest?.();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  receiverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  connection = createQueueConnection(TEST_REDIS_URL, 'alerts-test');
  queue = new Queue('analytics', { connection, prefix });
  const log = pino({ level: 'silent' });
  const alerts = alertJobs({
    adminSql: h.db.adminSql,
    allowPrivateTargets: true,
    // The catalogue's back-off (10 s doubling) shortened so the test sees three attempts quickly.
    enqueueDelivery: (deliveryId) => queue.add('webhooks.deliver', { deliveryId }, jobOptions('webhooks.deliver', { backoff: { type: 'fixed', delay: 100 }, attempts: 3 })),
  });
  const processor = createProcessor({ sql: h.db.appSql, engine: await engineOnce(), log, shutdown: stop.signal, alerts });
  worker = new Worker('analytics', processor, { connection, prefix, concurrency: 1 });
}, 120_000);

afterAll(async () => {
  stop.abort();
  await worker?.close();
  await queue?.obliterate({ force: true }).catch(() => {});
  await queue?.close();
  await connection?.quit();
  server?.close();
  await h?.close();
});

async function predict(who: UserKey, symbol: string, year: string, ratios: Record<string, number>, level: 'organization' | 'personal' = 'organization') {
  const res = await h.api('POST', '/predictions/annual?upsert=true', who, { company: { symbol, name: `${symbol} Corp`, sector: 'Energy' }, reporting_year: year, access_level: level, ...ratios });
  expect(res.statusCode, res.body).toBeLessThan(300);
  return res.json() as { id: string; company: { id: string }; probability: number; risk_level: string };
}

const changes = async () => (await h.db.adminSql<{ n: number }[]>`select count(*)::int as n from prediction_changes`)[0]!.n;

describe('alert rules', () => {
  it('risk level, implied rating and a PD move beyond the threshold each raise an alert; a first prediction none', () => {
    expect(alertReasons({ old_probability: null, old_risk_level: null, new_probability: 0.3, new_risk_level: 'CRITICAL' }, 0.01)).toEqual([]);
    expect(alertReasons({ old_probability: 0.01, old_risk_level: 'LOW', new_probability: 0.03, new_risk_level: 'MEDIUM' }, 0.01)).toEqual(['risk_level', 'implied_rating', 'pd_move']);
    // Same level and grade, moved 0.5 pp: nothing at a 1 pp threshold, an alert at 0.4 pp.
    expect(alertReasons({ old_probability: 0.1, old_risk_level: 'HIGH', new_probability: 0.105, new_risk_level: 'HIGH' }, 0.01)).toEqual([]);
    expect(alertReasons({ old_probability: 0.1, old_risk_level: 'HIGH', new_probability: 0.105, new_risk_level: 'HIGH' }, 0.004)).toEqual(['pd_move']);
    // Exactly the threshold is not "more than" it.
    expect(alertReasons({ old_probability: 0.1, old_risk_level: 'HIGH', new_probability: 0.11, new_risk_level: 'HIGH' }, 0.01)).toEqual([]);
    // A deployment's own scale (IMPLIED_RATING_SCALE) decides what a change of grade is.
    const scale = [{ grade: 'IN', maxPd: 0.102 }, { grade: 'OUT', maxPd: Infinity }];
    expect(alertReasons({ old_probability: 0.1, old_risk_level: 'HIGH', new_probability: 0.105, new_risk_level: 'HIGH' }, 0.01, scale)).toEqual(['implied_rating']);
    expect(alertReasons({ old_probability: 0.01, old_risk_level: 'LOW', new_probability: 0.03, new_risk_level: 'MEDIUM' }, 0.05, scale)).toEqual(['risk_level']);
  });

  it('signs with HMAC-SHA256 over timestamp and body, and verifies only the exact body', () => {
    const body = '{"a":1}';
    const sig = signWebhook('s3cret', '1700000000', body);
    expect(sig).toBe(`sha256=${createHmac('sha256', 's3cret').update(`1700000000.${body}`).digest('hex')}`);
    expect(verifyWebhook('s3cret', '1700000000', body, sig)).toBe(true);
    expect(verifyWebhook('s3cret', '1700000000', '{"a":2}', sig)).toBe(false);
    expect(verifyWebhook('other', '1700000000', body, sig)).toBe(false);
    expect(verifyWebhook('s3cret', '1700000001', body, sig)).toBe(false);
  });
});

describe('watch lists', () => {
  it('follow the companies\' access rules per role', async () => {
    const orgA1 = h.w.companies.orgA1;
    const add = (who: UserKey, body: Record<string, unknown>) => h.api('POST', '/watches', who, body);
    const org = await add('omA1', { company_id: orgA1, access_level: 'organization' });
    expect(org.statusCode, org.body).toBe(201);
    expect((await add('omA1b', { company_id: orgA1, access_level: 'organization' })).statusCode).toBe(409);
    const mine = await add('omA1', { company_id: h.w.companies.persA1 });
    expect(mine.statusCode, mine.body).toBe(201);
    // Someone else's personal company, or another tenant's: not found, nothing written.
    expect((await add('omA1b', { company_id: h.w.companies.persA1 })).statusCode).toBe(404);
    expect((await add('omB1', { company_id: orgA1 })).statusCode).toBe(404);
    expect((await add('uA', { company_id: orgA1 })).statusCode).toBe(404);
    const noOrg = await add('uA', { company_id: h.w.companies.system, access_level: 'organization' });
    expect(noOrg.statusCode).toBe(422);
    expect(noOrg.json().error.message).toMatch(/access_level/);
    expect((await add('omA1', { company_id: orgA1, pd_threshold: 2 })).statusCode).toBe(422);

    const seen = async (who: UserKey) => ((await h.api('GET', '/watches', who)).json().items as Array<{ id: string }>).map((w) => w.id).sort();
    expect(await seen('omA1')).toEqual([org.json().id, mine.json().id].sort());
    expect(await seen('omA1b')).toEqual([org.json().id]);
    expect(await seen('taA')).toEqual([org.json().id]);
    expect(await seen('omA2')).toEqual([]);
    expect(await seen('omB1')).toEqual([]);
    // omA1b may not remove omA1's organization watch (org members change only their own rows).
    expect((await h.api('DELETE', `/watches/${org.json().id}`, 'omA1b')).statusCode).toBe(404);
    expect((await h.api('DELETE', `/watches/${mine.json().id}`, 'omA2')).statusCode).toBe(404);
    expect((await h.api('DELETE', `/watches/${mine.json().id}`, 'omA1')).statusCode).toBe(204);
    expect((await h.api('DELETE', `/watches/${org.json().id}`, 'omA1')).statusCode).toBe(204);
  });
});

describe('alerts', () => {
  it('the create path records changes only for watched companies, and the inbox shows the alert to the watch\'s scope', async () => {
    const before = await changes();
    const a = await predict('omA1', 'ALRT', '2023', LOW);
    await predict('omA1', 'ALRT', '2024', HIGH);
    expect(await changes()).toBe(before); // nobody watches ALRT yet
    const w = await h.api('POST', '/watches', 'omA1', { company_id: a.company.id, access_level: 'organization' });
    expect(w.statusCode).toBe(201);
    // Re-scored 2024 (PATCH) and a new 2025: both compared, both captured by the triggers.
    const p2024 = (await h.api('GET', `/predictions/annual?company_id=${a.company.id}&reporting_year=2024`, 'omA1')).json().items[0];
    expect((await h.api('PATCH', `/predictions/annual/${p2024.id}`, 'omA1', LOW)).statusCode).toBe(200);
    await predict('omA1', 'ALRT', '2025', HIGH);
    expect(await changes()).toBe(before + 2);
    const r = await dispatchAlerts(h.db.adminSql);
    expect(r.alerts).toBe(2);
    expect(await changes()).toBe(0);

    const inbox = async (who: UserKey) => (await h.api('GET', '/alerts', who)).json() as { unread: number; items: Array<{ id: string; reasons: string[]; symbol: string; reporting_year: string; old_risk_level: string; new_risk_level: string; new_rating: string }> };
    const mine = await inbox('omA1');
    expect(mine.unread).toBe(2);
    expect(mine.items.map((x) => x.reporting_year).sort()).toEqual(['2024', '2025']);
    for (const x of mine.items) {
      expect(x.symbol).toBe('ALRT');
      expect(x.reasons).toContain('risk_level');
      expect(x.old_risk_level).not.toBe(x.new_risk_level);
      expect(x.new_rating).toMatch(/^[A-C]/);
    }
    expect((await inbox('omA1b')).unread).toBe(2);
    expect((await inbox('taA')).unread).toBe(2);
    expect((await inbox('omA2')).items).toEqual([]);
    expect((await inbox('omB1')).items).toEqual([]);
    expect((await h.api('GET', '/alerts/unread-count', 'omA1b')).json().unread).toBe(2);
    // omA2 cannot mark them read; omA1 can, for the organization's inbox.
    expect((await h.api('POST', '/alerts/read', 'omA2', { all: true })).json().updated).toBe(0);
    expect((await h.api('POST', '/alerts/read', 'omA1', { ids: [mine.items[0]!.id] })).json().updated).toBe(1);
    expect((await h.api('GET', '/alerts/unread-count', 'omA1b')).json().unread).toBe(1);
    expect((await h.api('POST', '/alerts/read', 'omA1b', { all: true })).json().updated).toBe(1);
    expect((await h.api('GET', '/alerts/unread-count', 'omA1')).json().unread).toBe(0);
    expect((await h.api('POST', '/alerts/read', 'omA1', { ids: [] })).statusCode).toBe(422);
  });

  it('webhooks: only organization admins set an organization\'s, the secret is shown once and never readable by the app', async () => {
    expect((await h.api('PUT', '/webhooks', 'omA1', { url: receiverUrl, access_level: 'organization' })).statusCode).toBe(403);
    expect((await h.api('PUT', '/webhooks', 'oaA1', { url: 'ftp://x', access_level: 'organization' })).statusCode).toBe(422);
    const put = await h.api('PUT', '/webhooks', 'oaA1', { url: receiverUrl, access_level: 'organization' });
    expect(put.statusCode, put.body).toBe(201);
    expect(put.json().secret).toMatch(/^whsec_/);
    const list = (await h.api('GET', '/webhooks', 'omA1')).json();
    expect(list.items).toHaveLength(1);
    expect(JSON.stringify(list)).not.toContain(put.json().secret);
    expect((await h.api('GET', '/webhooks', 'omA2')).json().items).toEqual([]);
    await expect(h.db.appSql`select secret from webhooks`).rejects.toThrow(/permission denied/);
  });

  it('a delivery is signed, retried with back-off by the worker until the receiver takes it, and logged', async () => {
    const put = await h.api('PUT', '/webhooks', 'oaA1', { url: receiverUrl, access_level: 'organization' });
    const { secret, webhook } = put.json() as { secret: string; webhook: { id: string } };
    plan = [500, 503];
    received.length = 0;
    const third = new Promise<void>((resolve) => (onRequest = () => received.length >= 3 && resolve()));
    await predict('omA1', 'ALRT', '2026', LOW);
    await queue.add('alerts.dispatch', {}, jobOptions('alerts.dispatch'));
    await third;
    expect(received.map((r) => r.status)).toEqual([500, 503, 200]);
    for (const r of received) {
      const ts = String(r.headers['x-accunode-timestamp']);
      expect(verifyWebhook(secret, ts, r.body, String(r.headers['x-accunode-signature']))).toBe(true);
    }
    const body = JSON.parse(received[2]!.body);
    expect(body.alerts).toHaveLength(1);
    expect(body.alerts[0].symbol).toBe('ALRT');
    let log: Array<{ status: string; attempts: number; last_status_code: number }> = [];
    for (let i = 0; i < 100 && log[0]?.status !== 'delivered'; i++) {
      log = (await h.api('GET', `/webhooks/${webhook.id}/deliveries`, 'omA1b')).json().items;
      if (log[0]?.status !== 'delivered') await new Promise((r) => setTimeout(r, 50));
    }
    expect(log[0]).toMatchObject({ status: 'delivered', attempts: 3, last_status_code: 200 });
    expect((await h.api('GET', `/webhooks/${webhook.id}/deliveries`, 'omA2')).statusCode).toBe(404);
  });

  it('a delivery the receiver keeps refusing is marked failed after its last attempt', async () => {
    plan = [500, 500, 500];
    received.length = 0;
    const third = new Promise<void>((resolve) => (onRequest = () => received.length >= 3 && resolve()));
    await predict('omA1', 'ALRT', '2027', HIGH);
    await queue.add('alerts.dispatch', {}, jobOptions('alerts.dispatch'));
    await third;
    let row: { status: string; attempts: number } | undefined;
    for (let i = 0; i < 100 && row?.status !== 'failed'; i++) {
      [row] = await h.db.adminSql<{ status: string; attempts: number }[]>`select status, attempts from webhook_deliveries order by created_at desc limit 1`;
      if (row?.status !== 'failed') await new Promise((r) => setTimeout(r, 50));
    }
    expect(row).toMatchObject({ status: 'failed', attempts: 3 });
  });

  it('a bulk upload raises its alerts as one webhook delivery', async () => {
    plan = [];
    const symbols = ['BLKA', 'BLKB', 'BLKC'];
    for (const s of symbols) {
      const p = await predict('omA1', s, '2023', LOW);
      expect((await h.api('POST', '/watches', 'omA1', { company_id: p.company.id, access_level: 'organization' })).statusCode).toBe(201);
    }
    await dispatchAlerts(h.db.adminSql);
    const cols = ['company_symbol', 'company_name', 'reporting_year', ...Object.keys(HIGH)];
    const csv = [cols.join(','), ...symbols.map((s) => [s, `${s} Corp`, '2024', ...Object.values(HIGH)].join(','))].join('\n');
    const file = path.join(tmpDir('accunode-alerts-'), 'bulk.csv');
    writeFileSync(file, csv);
    const u = h.w.users.omA1;
    const p = { userId: u.id, role: u.role, tenantId: u.tenant, organizationId: u.org };
    const job = await createBulkJob(h.db.appSql, p, { kind: 'annual', filePath: file, accessLevel: 'organization' });
    expect((await runBulkJob({ sql: h.db.appSql, engine: await engineOnce() }, u.id, job.id)).progress.rows_succeeded).toBe(3);
    received.length = 0;
    const one = new Promise<void>((resolve) => (onRequest = () => resolve()));
    await queue.add('alerts.dispatch', {}, jobOptions('alerts.dispatch'));
    await one;
    const body = JSON.parse(received[0]!.body);
    expect(body.bulk_job_id).toBe(job.id);
    expect(body.alerts.map((a: { symbol: string }) => a.symbol).sort()).toEqual(symbols);
    const [d] = await h.db.adminSql<{ n: number }[]>`select count(*)::int as n from webhook_deliveries where bulk_job_id = ${job.id}`;
    expect(d!.n).toBe(1);
  });
});

describe('the configured rating scale', () => {
  // Last: its dispatch drains whatever is left in the outbox.
  it('is the one the alert jobs read grades on (what the worker passes from IMPLIED_RATING_SCALE)', async () => {
    const a = await predict('omA2', 'SCAL', '2020', LOW);
    expect((await h.api('POST', '/watches', 'omA2', { company_id: a.company.id, access_level: 'organization' })).statusCode).toBe(201);
    const b = await predict('omA2', 'SCAL', '2021', HIGH);
    const scale = [{ grade: 'FINE', maxPd: (a.probability + b.probability) / 2 }, { grade: 'POOR', maxPd: Infinity }];
    const jobs = alertJobs({ adminSql: h.db.adminSql, enqueueDelivery: async () => null, ratingScale: scale });
    await jobs.dispatch();
    const rows = await h.db.adminSql<Array<{ old_rating: string; new_rating: string; reasons: string[] }>>`
      select a.old_rating, a.new_rating, a.reasons from alerts a join companies c on c.id = a.company_id where c.symbol = 'SCAL'`;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ old_rating: 'FINE', new_rating: 'POOR' });
    expect(rows[0]!.reasons).toContain('implied_rating');
  });
});
