// Alert webhooks cannot be pointed at what only the servers reach (SSRF): the check itself, the
// route that sets a webhook, and a delivery whose URL became internal after it was accepted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookTargetProblem, type Resolver } from '../../src/services/webhook-target.js';
import { deliverWebhook } from '../../src/services/alerts.js';
import { createWorldApp, type WorldApp } from '../helpers/app.js';

const fixed = (addresses: string[]): Resolver => async () => addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

describe('webhook targets', () => {
  it.each([
    'http://127.0.0.1:9/hook', 'http://localhost/hook', 'http://169.254.169.254/latest/meta-data/', 'http://10.1.2.3/x',
    'http://172.20.0.5/x', 'http://192.168.1.10/x', 'http://100.64.0.1/x', 'http://0.0.0.0/x', 'http://[::1]/x',
    'http://[fe80::1]/x', 'http://[fd00::5]/x', 'http://[::ffff:127.0.0.1]/x', 'http://2130706433/x',
  ])('refuses %s', async (url) => {
    expect(await webhookTargetProblem(url, { allowPrivate: false })).toMatch(/private, loopback or link-local/);
  });

  it('refuses a public-looking name that resolves inside, and unresolvable names', async () => {
    expect(await webhookTargetProblem('https://hooks.example.org/x', { allowPrivate: false, resolve: fixed(['93.184.216.34', '10.0.0.7']) })).toMatch(/10\.0\.0\.7/);
    expect(await webhookTargetProblem('https://nowhere.invalid/x', { allowPrivate: false, resolve: async () => { throw new Error('ENOTFOUND'); } })).toMatch(/cannot be found/);
  });

  it('accepts public addresses, and private ones only when the deployment allows them', async () => {
    expect(await webhookTargetProblem('https://hooks.example.org/x', { allowPrivate: false, resolve: fixed(['93.184.216.34']) })).toBeNull();
    expect(await webhookTargetProblem('http://93.184.216.34:8080/hook', { allowPrivate: false })).toBeNull();
    expect(await webhookTargetProblem('http://127.0.0.1:9/hook', { allowPrivate: true })).toBeNull();
    expect(await webhookTargetProblem('ftp://93.184.216.34/x', { allowPrivate: true })).toMatch(/http/);
    expect(await webhookTargetProblem('https://user:pw@93.184.216.34/x', { allowPrivate: false })).toMatch(/user name or password/);
  });
});

describe('the webhook routes and deliveries, with private targets not allowed (the default)', () => {
  let h: WorldApp;
  beforeAll(async () => {
    h = await createWorldApp(['oaA1']);
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it('PUT /webhooks refuses an internal address with a 422 naming url, and stores nothing', async () => {
    for (const url of ['http://127.0.0.1:6379/', 'http://169.254.169.254/latest/meta-data/']) {
      const res = await h.api('PUT', '/webhooks', 'oaA1', { url, access_level: 'organization' });
      expect(res.statusCode, url).toBe(422);
      expect(JSON.stringify(res.json())).toMatch(/url/);
    }
    const [n] = await h.db.adminSql<{ n: number }[]>`select count(*)::int as n from webhooks`;
    expect(n!.n).toBe(0);
    expect((await h.api('PUT', '/webhooks', 'oaA1', { url: 'http://93.184.216.34:9/hook', access_level: 'organization' })).statusCode).toBe(201);
  });

  it('a delivery whose URL now points inside is not sent, and fails at once', async () => {
    const [w] = await h.db.adminSql<{ id: string }[]>`select id from webhooks limit 1`;
    // As if the stored address had been re-pointed after it was accepted.
    await h.db.adminSql`update webhooks set url = 'http://127.0.0.1:9/hook' where id = ${w!.id}`;
    const [d] = await h.db.adminSql<{ id: string }[]>`insert into webhook_deliveries (webhook_id, alert_count, body) values (${w!.id}, 1, '{}') returning id`;
    expect(await deliverWebhook(h.db.adminSql, d!.id, { allowPrivateTargets: false })).toBe('skipped');
    const [row] = await h.db.adminSql<{ status: string; last_error: string; attempts: number }[]>`select status, last_error, attempts from webhook_deliveries where id = ${d!.id}`;
    expect(row).toMatchObject({ status: 'failed', attempts: 1 });
    expect(row!.last_error).toMatch(/not sent.*loopback/);
  });
});
