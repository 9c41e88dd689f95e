// The web app in a real browser (Debian's Chromium via playwright-core) against the real API,
// database, Redis and an in-process bulk worker: sign in, create a prediction and see the result,
// upload a bulk file and watch it finish, the dashboard, portfolio and company pages, operations
// and administration, another organization's user seeing none of it, a revoked session leading
// back to sign-in, the phone layout, and no console errors. Screenshots of each page go to
// test-artifacts/screenshots/.
import { writeFileSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { setWorldPasswords, TEST_PASSWORD } from '../helpers/app.js';
import { makeRows, toCsv } from '../bulk/helpers.js';
import { chromiumStatus, newBrowser, screenshot, startServer, type Server } from './harness.js';

const status = chromiumStatus();

describe.skipIf(!status.run)('web app end to end (Chromium)', () => {
  let db: TestDatabase;
  let world: World;
  let server: Server;
  let browser: Awaited<ReturnType<typeof newBrowser>>;
  let page: Page;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-e2e-files-'));

  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 6 });
    world = await buildWorld(db.adminSql);
    await setWorldPasswords(db, world);
    server = await startServer(db);
    browser = await newBrowser();
    page = browser.page;
    page.setDefaultTimeout(15_000);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await db?.drop();
  });

  async function signIn(p: Page, login: string, opts: { cookie?: boolean } = {}) {
    await p.goto(server.url + '/');
    await p.getByLabel('E-mail or username').fill(login);
    await p.getByLabel('Password').fill(TEST_PASSWORD);
    if (opts.cookie) await p.getByLabel('Keep me signed in on this device').check();
    await p.getByLabel('Password').press('Enter'); // keyboard submit
    await p.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  }

  it('signs in (an unknown password is refused with a message; the keyboard works)', async () => {
    await page.goto(server.url + '/portfolio');
    await page.waitForURL(/\/sign-in\?next=%2Fportfolio/);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await screenshot(page, '01-sign-in');
    await page.getByLabel('E-mail or username').fill('omA1');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'do not match' }).waitFor();
    browser.errors.length = 0; // the refused login's 401 is expected
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.waitForURL(/\/portfolio$/);
    await page.getByRole('heading', { level: 1, name: 'Portfolio' }).waitFor();
    expect(await page.getByRole('navigation', { name: 'Main' }).textContent()).not.toContain('Operations'); // a member is no admin
  });

  it('creates a prediction: client-side validation first, then the result with its explanation', async () => {
    await page.getByRole('link', { name: 'New prediction' }).click();
    await page.getByRole('heading', { level: 1, name: 'New prediction' }).waitFor();
    await page.getByLabel('Symbol').fill('E2EA');
    await page.getByLabel('Company name').fill('End To End Industries');
    await page.getByLabel('Sector').fill('Utilities');
    await page.getByLabel('Reporting year').fill('2024');
    await page.getByLabel(/Long-term debt \/ total capital/).fill('35.2');
    await page.getByLabel(/Total debt \/ EBITDA/).fill('abc');
    await page.getByLabel(/Net income margin/).fill('12000');
    await page.getByLabel(/EBIT \/ interest expense/).fill('6.3');
    await page.getByRole('button', { name: 'Predict' }).click();
    // Refused before any request: the same rules and wording as the API.
    await page.getByText('Total debt / EBITDA: must be a number').waitFor();
    await page.getByText('is too large: it must be between -10,000 and 10,000').waitFor();
    expect(await page.getByLabel(/Total debt \/ EBITDA/).getAttribute('aria-invalid')).toBe('true');
    await screenshot(page, '02-new-prediction-validation');
    await page.getByLabel(/Total debt \/ EBITDA/).fill('2.1');
    await page.getByLabel(/Net income margin/).fill('7.5');
    // return_on_assets left empty: a missing ratio
    await page.getByRole('button', { name: 'Predict' }).click();
    const prob = page.getByTestId('result-probability');
    await prob.waitFor();
    expect(await prob.textContent()).toMatch(/^\d+\.\d\d %$/);
    await page.getByRole('heading', { name: 'What drove it' }).waitFor();
    await page.getByRole('heading', { name: 'Component models' }).waitFor();
    const [n] = await db.adminSql<[{ n: number }]>`select count(*)::int as n from annual_predictions p join companies c on c.id = p.company_id where c.symbol = 'E2EA' and p.return_on_assets is null`;
    expect(n.n).toBe(1);
    await screenshot(page, '03-new-prediction-result');
  });

  it('uploads a bulk file, watches the progress to the end, and shows the error rows', async () => {
    const rows = makeRows('annual', 400, { seed: 5, symbolPrefix: 'BLK' });
    rows[7]!.net_income_margin = 'not-a-number';
    rows[99]!.reporting_year = '20x4';
    const file = path.join(dir, 'portfolio.csv');
    writeFileSync(file, toCsv('annual', rows));
    await page.getByRole('link', { name: 'Bulk upload' }).click();
    await page.getByRole('heading', { level: 1, name: 'Bulk upload' }).waitFor();
    expect(await page.getByRole('link', { name: 'annual-template.csv' }).getAttribute('href')).toBe('/templates/annual-template.csv');
    const template = await page.request.get(server.url + '/templates/annual-template.csv');
    expect((await template.text()).split('\n')[0]).toContain('company_symbol,company_name,sector,reporting_year,long_term_debt_to_total_capital');
    await page.setInputFiles('#bulk-file', file);
    await page.getByText('portfolio.csv').first().waitFor();
    await page.getByRole('button', { name: 'Upload and score' }).click();
    await page.getByRole('progressbar', { name: 'Rows processed' }).waitFor();
    await page.getByTestId('job-status').filter({ hasText: /Completed/ }).waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('rows-succeeded').textContent()).toBe('398');
    expect(await page.getByTestId('rows-failed').textContent()).toBe('2');
    const errorRows = page.getByTestId('error-rows').locator('tbody tr');
    // The errors CSV is fetched once the job shows Completed: wait for it rather than race it.
    await errorRows.nth(1).waitFor();
    expect(await errorRows.count()).toBe(2);
    expect(await page.getByTestId('error-rows').textContent()).toMatch(/net_income_margin/);
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download errors CSV' }).click();
    const d = await download;
    expect(d.suggestedFilename()).toMatch(/errors\.csv$/);
    await screenshot(page, '04-bulk-upload-finished');
  });

  it('opens the dashboard with its charts', async () => {
    await page.getByRole('link', { name: 'Dashboard' }).click();
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    await page.getByTestId('dashboard-stats').waitFor();
    expect(await page.getByTestId('dashboard-stats').textContent()).toMatch(/Predictions\s*\d+/);
    for (const h of ['Risk distribution', 'By sector', 'Over time', 'Top-risk companies']) await page.getByRole('heading', { name: h }).waitFor();
    expect(await page.locator('.recharts-surface').count()).toBeGreaterThan(2);
    await screenshot(page, '05-dashboard');
  });

  it('lists the portfolio with search, sector filter and paging, and opens a company', async () => {
    await page.getByRole('link', { name: 'Portfolio' }).click();
    await page.getByTestId('portfolio-table').waitFor();
    await page.getByText(/of \d+/).first().waitFor(); // paged: the bulk file made > 25 companies
    await screenshot(page, '06-portfolio');
    await page.getByLabel('Search').fill('End To End');
    await page.getByTestId('portfolio-table').locator('tbody tr').first().filter({ hasText: 'E2EA' }).waitFor();
    expect(await page.getByTestId('portfolio-table').locator('tbody tr').count()).toBe(1);
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Sector').selectOption('Utilities');
    await page.getByTestId('portfolio-table').locator('tbody tr').first().filter({ hasText: 'E2EA' }).waitFor();
    await page.getByRole('link', { name: /E2EA/ }).click();
    await page.getByRole('heading', { level: 1, name: /E2EA · End To End Industries/ }).waitFor();
    await page.getByRole('heading', { name: /Probability of default by year/ }).waitFor();
    await page.getByRole('heading', { name: 'What drove it' }).waitFor();
    // Its latest PD against the sector's companies this analyst can see.
    await page.getByTestId('sector-context').filter({ hasText: /Utilities/ }).waitFor();
    expect(await page.getByTestId('sector-context').textContent()).toMatch(/percentile in Utilities .*sector median \d|only Utilities company you can see/);
    await screenshot(page, '07-company');
  });

  it('works at phone width', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('button', { name: 'Menu' }).click();
    await page.getByRole('link', { name: 'Dashboard' }).click();
    await page.getByTestId('dashboard-stats').waitFor();
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBeLessThanOrEqual(1);
    await screenshot(page, '08-dashboard-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('made no console errors', () => {
    expect(browser.errors).toEqual([]);
  });

  it('a user of another organization sees none of the first user\'s data', async () => {
    const other = await newBrowser();
    try {
      await signIn(other.page, 'omB1');
      await other.page.getByRole('link', { name: 'Portfolio' }).click();
      await other.page.getByTestId('portfolio-table').waitFor();
      const text = await other.page.getByTestId('portfolio-table').textContent();
      expect(text).not.toContain('E2EA');
      expect(text).not.toContain('BLK');
      await other.page.getByLabel('Search').fill('End To End');
      await other.page.getByText('No company matches').waitFor();
      await screenshot(other.page, '09-other-org-portfolio');
      const [c] = await db.adminSql<[{ id: string }]>`select id from companies where symbol = 'E2EA'`;
      // Client-side navigation (the session token lives in this tab's memory; a reload would drop it).
      await other.page.evaluate(`history.pushState(null, '', '/companies/${c.id}'); dispatchEvent(new PopStateEvent('popstate'))`);
      await other.page.getByRole('alert').waitFor();
      expect(await other.page.getByRole('alert').textContent()).toMatch(/not found/i);
      await screenshot(other.page, '09b-other-org-company-not-found');
      expect(other.errors.filter((e) => !/404/.test(e))).toEqual([]);
      await other.page.getByRole('link', { name: 'Dashboard' }).click();
      await other.page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
      const stats = other.page.getByTestId('dashboard-stats');
      await stats.waitFor();
      expect(await other.page.getByRole('heading', { name: 'Top-risk companies' }).locator('..').locator('..').textContent()).not.toMatch(/E2EA|BLK/);
    } finally {
      await other.close();
    }
  });

  it('shows operations to a tenant admin and administration to an org admin', async () => {
    const admin = await newBrowser();
    try {
      await signIn(admin.page, 'taA');
      await admin.page.getByRole('link', { name: 'Operations' }).click();
      await admin.page.getByTestId('ops-health').waitFor();
      expect(await admin.page.getByTestId('ops-health').textContent()).toMatch(/PostgreSQL\s*up/);
      // Backups and replicas are platform-wide: shown to super admins only (issue 13).
      expect(await admin.page.getByTestId('ops-health').textContent()).not.toMatch(/Backups/);
      await admin.page.getByRole('heading', { name: 'Alarms' }).waitFor();
      await screenshot(admin.page, '10-operations');
      await admin.page.getByRole('button', { name: 'Sign out' }).click();
      await admin.page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await signIn(admin.page, 'oaA1');
      expect(await admin.page.getByRole('navigation', { name: 'Main' }).textContent()).not.toContain('Operations');
      await admin.page.getByRole('link', { name: 'Administration' }).click();
      await admin.page.getByRole('heading', { name: /Org A1: members and access/ }).waitFor();
      await admin.page.getByLabel('Add e-mail addresses').fill('new.analyst@example.com');
      await admin.page.getByRole('button', { name: 'Add', exact: true }).click();
      await admin.page.getByText('new.analyst@example.com').waitFor();
      await admin.page.getByRole('button', { name: 'Issue a new token' }).click();
      await admin.page.getByTestId('join-token').waitFor();
      await screenshot(admin.page, '11-administration');
      expect(admin.errors).toEqual([]);
    } finally {
      await admin.close();
    }
  });

  it('a session ended elsewhere (logout everywhere) sends the cookie user back to sign-in', async () => {
    const b = await newBrowser();
    try {
      await signIn(b.page, 'omA1b', { cookie: true });
      const cookies = await b.context.cookies();
      const c = cookies.find((x) => x.name === 'accunode_session');
      expect(c).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
      expect(await b.page.evaluate<string>('document.cookie')).not.toContain('accunode_session');
      // A reload keeps the cookie session.
      await b.page.reload();
      await b.page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
      // Logged out everywhere from another device:
      const login = await fetch(server.url + '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'omA1b', password: TEST_PASSWORD }) });
      const { token } = (await login.json()) as { token: string };
      expect((await fetch(server.url + '/api/v1/auth/logout-all', { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      await b.page.getByRole('link', { name: 'Portfolio' }).click();
      await b.page.waitForURL(/\/sign-in/);
      await b.page.getByText('Your session has ended').waitFor();
      await screenshot(b.page, '12-session-ended');
      expect(b.errors.filter((e) => !/401/.test(e))).toEqual([]);
    } finally {
      await b.close();
    }
  });

  it('shows an unverified user its state and a resend button; the e-mailed link confirms the address, signed in or not', async () => {
    const email = 'newbie.e2e@example.com';
    const reg = await fetch(server.url + '/api/v1/auth/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, username: 'newbie_e2e', password: TEST_PASSWORD }) });
    expect(reg.status).toBe(202);
    const b = await newBrowser();
    try {
      await signIn(b.page, 'newbie_e2e');
      const banner = b.page.getByTestId('verify-banner');
      expect(await banner.textContent()).toMatch(/newbie\.e2e@example\.com is not verified/);
      await b.page.getByRole('button', { name: 'Send a new link' }).click();
      await b.page.getByText('A new link is on its way').waitFor();
      await screenshot(b.page, '13-verify-banner');
      const mails = readdirSync(server.outbox).sort().map((f) => readFileSync(path.join(server.outbox, f), 'utf8')).filter((t) => t.includes(`To: ${email}`));
      expect(mails).toHaveLength(2);
      const token = /verify-email\?token=([A-Za-z0-9_-]+)/.exec(mails[1]!)![1]!;
      // Opened from the mail client: a fresh page load, the in-memory session is gone.
      await b.page.goto(`${server.url}/verify-email?token=${token}`);
      expect(await b.page.getByTestId('verify-result').textContent()).toMatch(/Your e-mail address is confirmed/);
      await screenshot(b.page, '14-verified');
      await b.page.goto(`${server.url}/verify-email?token=${token}`);
      expect(await b.page.getByTestId('verify-result').textContent()).toMatch(/already been used/);
      await signIn(b.page, 'newbie_e2e');
      expect(await b.page.getByTestId('verify-banner').count()).toBe(0);
      expect(b.errors.filter((e) => !/409/.test(e))).toEqual([]);
    } finally {
      await b.close();
    }
  });
});
