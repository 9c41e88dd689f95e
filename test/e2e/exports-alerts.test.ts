// Exports and alerts in a real browser (Debian's Chromium via playwright-core): the portfolio's and
// a company's download buttons give the files the API streams, a company can be watched from its
// page, an alert for it shows in the inbox with the unread count in the navigation, and a webhook
// is set with its secret shown once; on a desktop and a phone viewport. Screenshots go to
// test-artifacts/screenshots/.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { setWorldPasswords, TEST_PASSWORD } from '../helpers/app.js';
import { dispatchAlerts } from '../../src/services/alerts.js';
import { computeModelDrift, storeModelDrift } from '../../src/services/model-drift.js';
import { readModelFiles } from '../../src/services/model-store.js';
import { createRiskEngine } from '../../src/risk/index.js';
import { chromiumStatus, newBrowser, screenshot, startServer, type Server } from './harness.js';

const status = chromiumStatus();
const HIGH = { long_term_debt_to_total_capital: 85, total_debt_to_ebitda: 9, net_income_margin: -12, ebit_to_interest_expense: 0.4, return_on_assets: -6 };
const LOW = { long_term_debt_to_total_capital: 20, total_debt_to_ebitda: 1, net_income_margin: 15, ebit_to_interest_expense: 20, return_on_assets: 10 };

describe.skipIf(!status.run)('exports and alerts end to end (Chromium)', () => {
  let db: TestDatabase;
  let world: World;
  let server: Server;
  let browser: Awaited<ReturnType<typeof newBrowser>>;
  let page: Page;

  async function apiAs(login: string, method: string, url: string, body?: unknown) {
    const t = await fetch(`${server.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login, password: TEST_PASSWORD }) });
    const { token } = (await t.json()) as { token: string };
    const res = await fetch(`${server.url}/api/v1${url}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
    return res.json() as Promise<Record<string, unknown>>;
  }

  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 6 });
    world = await buildWorld(db.adminSql);
    await setWorldPasswords(db, world);
    server = await startServer(db);
    await apiAs('omA1', 'POST', '/predictions/annual', { company: { symbol: 'WTCH', name: '=Watched Holdings', sector: 'Energy' }, reporting_year: '2023', access_level: 'organization', ...LOW });
    browser = await newBrowser();
    page = browser.page;
    page.setDefaultTimeout(15_000);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await db?.drop();
  });

  async function signIn(p: Page, login: string) {
    await p.goto(server.url + '/');
    await p.getByLabel('E-mail or username').fill(login);
    await p.getByLabel('Password').fill(TEST_PASSWORD);
    await p.getByLabel('Password').press('Enter');
    await p.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  }

  it('downloads the portfolio as CSV and a company history as Excel', async () => {
    await signIn(page, 'omA1');
    await page.getByRole('link', { name: 'Portfolio' }).click();
    await page.getByRole('heading', { level: 1, name: 'Portfolio' }).waitFor();
    const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download the portfolio as CSV' }).click()]);
    expect(csv.suggestedFilename()).toMatch(/^portfolio-\d{4}-\d{2}-\d{2}\.csv$/);
    const text = readFileSync((await csv.path())!, 'utf8');
    expect(text.split('\r\n')[0]).toMatch(/^\uFEFFcompany_symbol,company_name,/);
    expect(text).toContain("WTCH,'=Watched Holdings");
    expect(text).not.toContain('ORGA2'); // another organization's company
    await screenshot(page, 'i17b-01-portfolio-export');

    await page.getByRole('link', { name: /WTCH/ }).click();
    await page.getByRole('heading', { level: 1, name: /WTCH/ }).waitFor();
    const [xlsx] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /as Excel/ }).click()]);
    expect(xlsx.suggestedFilename()).toMatch(/^annual-predictions-.*\.xlsx$/);
    expect(readFileSync((await xlsx.path())!).subarray(0, 2).toString()).toBe('PK');
  });

  it('watches a company from its page; the alert shows in the inbox with the unread count', async () => {
    await page.getByRole('button', { name: 'Watch for my organization' }).click();
    await page.getByRole('button', { name: 'Organization watching ✓' }).waitFor();
    expect(await page.getByRole('button', { name: 'Organization watching ✓' }).getAttribute('aria-pressed')).toBe('true');
    await screenshot(page, 'i17b-02-company-watch');
    await apiAs('omA1b', 'POST', '/predictions/annual', { company: { symbol: 'WTCH', name: '=Watched Holdings' }, reporting_year: '2024', access_level: 'organization', ...HIGH });
    expect((await dispatchAlerts(db.adminSql)).alerts).toBe(1);
    await page.getByRole('link', { name: 'Dashboard' }).click();
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByLabel('1 unread').waitFor();
    await nav.getByRole('link', { name: /Alerts/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();
    const table = page.getByTestId('alerts-table');
    await table.getByText('WTCH').waitFor();
    expect(await table.textContent()).toContain('risk level changed');
    await page.getByRole('heading', { name: 'Inbox (1 unread)' }).waitFor();
    await screenshot(page, 'i17b-03-alerts-inbox');
    await page.getByRole('button', { name: 'Mark all read' }).click();
    await page.getByRole('heading', { name: 'Inbox (0 unread)' }).waitFor();
    await nav.getByLabel('1 unread').waitFor({ state: 'detached' });
  });

  it('sets a webhook and shows its secret once', async () => {
    await page.getByLabel('Webhook URL').fill('http://127.0.0.1:9/accunode');
    await page.getByRole('button', { name: 'Save and generate a secret' }).click();
    const secret = await page.getByTestId('webhook-secret').textContent();
    expect(secret).toMatch(/^whsec_/);
    await page.getByRole('button', { name: 'Show deliveries' }).click();
    await page.getByText('Nothing delivered yet').waitFor();
    await screenshot(page, 'i17b-04-alerts-webhook');
    // Away and back (a reload would sign out: the session token lives in memory only).
    await page.getByRole('link', { name: 'Portfolio' }).click();
    await page.getByRole('heading', { level: 1, name: 'Portfolio' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: /Alerts/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();
    await page.getByText('http://127.0.0.1:9/accunode').waitFor();
    expect(await page.content()).not.toContain(secret!);
    expect(browser.errors).toEqual([]);
  });

  it('the operations page charts the last 24 hours and refreshes itself', async () => {
    // 24 hours of 5-minute samples as the alarm job and the api write them, and one alarm transition.
    await db.adminSql`
      insert into metric_samples (metric, value, source, taken_at)
      select m, case m when 'db_connections' then 10 + (g % 7) when 'db_max_connections' then 100 when 'api_latency_p95_ms' then 25 + (g % 12) * 5
                       when 'app_cache_hit_percent' then 80 + (g % 15) when 'queue_waiting' then g % 4 else 1 end,
             'e2e', (now() at time zone 'utc') - g * interval '5 minutes'
      from generate_series(1, 287) g, unnest(array['db_connections', 'db_max_connections', 'api_latency_p95_ms', 'app_cache_hit_percent', 'queue_waiting', 'api_requests_per_s']) m`;
    await db.adminSql`insert into alarm_transitions (name, from_state, to_state, value, threshold, reason, at) values ('db_connections', 'OK', 'ALARM', 85, 80, '85 % of max_connections', (now() at time zone 'utc') - interval '3 hours')`;
    // And a drift run, as the weekly job stores it.
    const files = await readModelFiles();
    await storeModelDrift(db.adminSql, await computeModelDrift(db.adminSql, createRiskEngine({ annual: files.annual, quarterly: files.quarterly }), { byTenant: true }));
    const admin = await newBrowser();
    try {
      await signIn(admin.page, 'super');
      await admin.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Operations' }).click();
      await admin.page.getByRole('heading', { level: 1, name: 'Operations' }).waitFor();
      const history = admin.page.getByTestId('ops-history');
      await history.getByRole('img', { name: /Database connections, last 24 hours: in use now \d+/ }).waitFor();
      await history.getByRole('img', { name: /API latency \(p95\), last 24 hours/ }).waitFor();
      await admin.page.getByText('85 % of max_connections').waitFor();
      const drift = admin.page.getByTestId('model-drift');
      await drift.getByRole('img', { name: /^Annual model, population stability index: .*long term debt to total capital \d/ }).waitFor();
      await drift.getByRole('img', { name: /^Quarterly model, population stability index: .*current ratio \d/ }).waitFor();
      expect(await drift.getByRole('row').count()).toBeGreaterThan(10);
      await admin.page.getByText(/refreshes every 30 s/).waitFor();
      // The page reads its figures again by itself.
      const first = await admin.page.waitForResponse((r) => r.url().includes('/api/v1/ops/history'), { timeout: 45_000 });
      expect(first.status()).toBe(200);
      await screenshot(admin.page, 'i17b-06-operations-24h');
      expect(admin.errors).toEqual([]);
    } finally {
      await admin.close();
    }
  }, 90_000);

  it('the alerts page and a company page fit a phone', async () => {
    const phone = await newBrowser({ width: 390, height: 844 });
    try {
      await signIn(phone.page, 'omA1');
      await phone.page.getByRole('button', { name: 'Menu' }).click();
      await phone.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: /Alerts/ }).click();
      await phone.page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();
      await phone.page.getByTestId('alerts-table').waitFor();
      const overflow = await phone.page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
      await screenshot(phone.page, 'i17b-05-alerts-phone');
      expect(overflow).toBeLessThanOrEqual(0);
      expect(phone.errors).toEqual([]);
    } finally {
      await phone.close();
    }
  });
});
