// Issue 17 walked through again in Debian's Chromium: honest inputs (decimal marks, too few ratios,
// "not reported", the chart's zero, the form reset), one company per name (the seeded AAPL is
// used, a second one is an explicit choice, scopes shown, the symbol page, merge and delete from
// the UI), the bulk page remembering its job, and the company page at 390 px.
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { setWorldPasswords, TEST_PASSWORD } from '../helpers/app.js';
import { chromiumStatus, newBrowser, screenshot, startServer, type Server } from './harness.js';

const status = chromiumStatus();

describe.skipIf(!status.run)('what an analyst expects (Chromium)', () => {
  let db: TestDatabase;
  let world: World;
  let server: Server;
  let aapl: string;
  let ford: string;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-e2e-analyst-'));

  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 6 });
    world = await buildWorld(db.adminSql);
    await setWorldPasswords(db, world);
    // As `accunode up` seeds them: system companies of the demo admin.
    const [a] = await db.adminSql<{ id: string }[]>`insert into companies (symbol, name, market_cap, sector, access_level, created_by) values ('AAPL', 'Apple Inc.', 3400000000000, 'Information Technology', 'system', ${world.users.super.id}) returning id`;
    const [f] = await db.adminSql<{ id: string }[]>`insert into companies (symbol, name, market_cap, sector, access_level, created_by) values ('F', 'Ford Motor Company', 48000000000, 'Consumer Discretionary', 'system', ${world.users.super.id}) returning id`;
    aapl = a!.id;
    ford = f!.id;
    server = await startServer(db);
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  async function signIn(p: Page, login: string) {
    p.setDefaultTimeout(15_000);
    await p.goto(server.url + '/');
    await p.getByLabel('E-mail or username').fill(login);
    await p.getByLabel('Password').fill(TEST_PASSWORD);
    await p.getByLabel('Password').press('Enter');
    await p.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  }

  async function fillRatios(p: Page, r: { ltd?: string; debt?: string; nim?: string; cover?: string; roa?: string }) {
    if (r.ltd !== undefined) await p.locator('#f-long_term_debt_to_total_capital').fill(r.ltd);
    if (r.debt !== undefined) await p.locator('#f-total_debt_to_ebitda').fill(r.debt);
    if (r.nim !== undefined) await p.locator('#f-net_income_margin').fill(r.nim);
    if (r.cover !== undefined) await p.locator('#f-ebit_to_interest_expense').fill(r.cover);
    if (r.roa !== undefined) await p.locator('#f-return_on_assets').fill(r.roa);
  }

  async function newPrediction(p: Page, symbol: string, name: string, year: string, sector?: string) {
    await p.getByRole('link', { name: 'New prediction' }).click();
    await p.getByRole('heading', { level: 1, name: 'New prediction' }).waitFor();
    await p.getByLabel('Symbol').fill(symbol);
    await p.getByLabel('Company name').fill(name);
    if (sector !== undefined) await p.getByLabel('Sector').fill(sector);
    await p.getByLabel('Reporting year').fill(year);
  }

  it('the demo admin: "12,5" is refused in English, the seeded AAPL takes the prediction, "not reported" is explained, the chart starts at zero, the form resets', async () => {
    const b = await newBrowser(undefined, { locale: 'en-US' });
    try {
      const page = b.page;
      await signIn(page, 'super');
      await newPrediction(page, 'AAPL', 'Apple Inc.', '2024', 'Information Technology');
      await fillRatios(page, { ltd: '35.2', debt: '2.1', cover: '6.3', roa: '12,5' });
      await page.getByRole('button', { name: 'Predict' }).click();
      await page.getByText('Return on assets: uses "," in a way we cannot read safely: write decimals with "." (12.5)').waitFor();
      expect(await db.adminSql`select 1 from annual_predictions where company_id = ${aapl}`).toHaveLength(0);
      await screenshot(page, 'i17-01-decimal-refused');
      await fillRatios(page, { roa: '12.5' });
      await page.getByRole('button', { name: 'Predict' }).click();
      await page.getByTestId('result-probability').waitFor();
      // The seeded AAPL took it: no private copy.
      const rows = await db.adminSql<{ company_id: string; return_on_assets: number; net_income_margin: number | null }[]>`select p.company_id, p.return_on_assets, p.net_income_margin from annual_predictions p join companies c on c.id = p.company_id where c.symbol = 'AAPL'`;
      expect(rows).toEqual([{ company_id: aapl, return_on_assets: 12.5, net_income_margin: null }]);
      expect(await db.adminSql`select 1 from companies where symbol = 'AAPL'`).toHaveLength(1);
      // The missing ratio: "not reported" with its effect, never a value.
      const table = page.getByRole('table', { name: 'Contributions by ratio' });
      const nimRow = table.getByRole('row', { name: /Net income margin/ });
      expect(await nimRow.textContent()).toMatch(/not reported/);
      expect(await nimRow.textContent()).toMatch(/(raises|lowers) risk|neutral/);
      // The drivers chart's axis includes zero.
      const chart = page.getByRole('img', { name: /Contributions to the log-odds/ });
      const ticks = await chart.locator('.recharts-cartesian-axis-tick-value').allTextContents();
      expect(ticks).toContain('0');
      // The form was reset: the next company starts empty (no sector carried over).
      expect(await page.getByLabel('Symbol').inputValue()).toBe('');
      expect(await page.getByLabel('Sector').inputValue()).toBe('');
      expect(await page.locator('#f-return_on_assets').inputValue()).toBe('');
      await screenshot(page, 'i17-02-aapl-result');

      // Ford next: lands on the seeded F, whose sector stays its own.
      await page.getByLabel('Symbol').fill('F');
      await page.getByLabel('Company name').fill('Ford');
      await page.getByLabel('Reporting year').fill('2024');
      await fillRatios(page, { ltd: '60', debt: '5', nim: '2.1' });
      await page.getByRole('button', { name: 'Predict' }).click();
      await page.getByRole('link', { name: 'F · Ford Motor Company →' }).waitFor();
      const [fc] = await db.adminSql<{ id: string; sector: string }[]>`select c.id, c.sector from annual_predictions p join companies c on c.id = p.company_id where c.symbol = 'F'`;
      expect(fc).toEqual({ id: ford, sector: 'Consumer Discretionary' });

      // Too few ratios: the API's answer names them and the fields are marked.
      await page.getByLabel('Symbol').fill('THIN');
      await page.getByLabel('Company name').fill('Thin Data Ltd');
      await page.getByLabel('Reporting year').fill('2024');
      await fillRatios(page, { nim: '3', roa: '1' });
      await page.getByRole('button', { name: 'Predict' }).click();
      await page.getByText('Too few ratios for an annual prediction: at least 3 of 5 must be reported. Not reported: Long-term debt / total capital, Total debt / EBITDA, EBIT / interest expense.').waitFor();
      expect(await page.locator('#f-total_debt_to_ebitda').getAttribute('aria-invalid')).toBe('true');
      expect(await db.adminSql`select 1 from companies where symbol = 'THIN'`).toHaveLength(0);
      await screenshot(page, 'i17-03-too-few-ratios');
      expect(b.errors.filter((e) => !/422/.test(e))).toEqual([]);
    } finally {
      await b.close();
    }
  });

  it('a member (German locale): "12,5" is 12.5; a second AAPL is an explicit choice; scopes are shown; the symbol page lists both', async () => {
    const b = await newBrowser(undefined, { locale: 'de-DE' });
    try {
      const page = b.page;
      await signIn(page, 'omA1');
      await newPrediction(page, 'AAPL', 'Apple Inc.', '2023');
      await fillRatios(page, { ltd: '35,2', debt: '2,1', cover: '6,3', roa: '12,5' });
      await page.getByRole('button', { name: 'Predict' }).click();
      const choice = page.getByTestId('company-choice');
      await choice.waitFor();
      expect(await choice.textContent()).toMatch(/AAPL · Apple Inc\. \(visible to everyone\): you cannot add predictions to it/);
      await screenshot(page, 'i17-04-company-choice');
      await choice.getByRole('button', { name: 'Create a separate AAPL visible to my organization' }).click();
      await page.getByTestId('result-probability').waitFor();
      const [mine] = await db.adminSql<{ id: string; access_level: string; return_on_assets: number }[]>`
        select c.id, c.access_level, p.return_on_assets from annual_predictions p join companies c on c.id = p.company_id where c.symbol = 'AAPL' and p.reporting_year = '2023'`;
      expect(mine).toMatchObject({ access_level: 'organization', return_on_assets: 12.5 });
      await page.getByRole('link', { name: /AAPL · Apple Inc\. →/ }).click();
      await page.getByRole('heading', { level: 1, name: 'AAPL · Apple Inc.' }).waitFor();
      expect(await page.locator('.page-head').textContent()).toMatch(/My organization/);
      const same = page.getByTestId('same-symbol');
      expect(await same.textContent()).toMatch(/AAPL · Apple Inc\.\s*Visible to: Everyone/);
      await screenshot(page, 'i17-05-company-scopes');
      await page.getByRole('link', { name: 'All AAPL predictions you can see →' }).click();
      await page.getByRole('heading', { level: 1, name: 'AAPL in every scope' }).waitFor();
      const preds = page.getByTestId('symbol-predictions');
      await preds.waitFor();
      const text = (await preds.locator('tbody').textContent()) ?? '';
      expect(text).toMatch(/2024.*Everyone/);
      expect(text).toMatch(/2023.*My organization/);
      expect(await page.getByTestId('symbol-companies').locator('tbody tr').count()).toBe(2);
      await screenshot(page, 'i17-06-symbol-page');
      // The portfolio shows each row's scope.
      await page.getByRole('link', { name: 'Portfolio' }).click();
      await page.getByTestId('portfolio-table').waitFor();
      await page.getByLabel('Search').fill('AAPL');
      await page.getByTestId('portfolio-table').locator('tbody tr').nth(1).waitFor();
      const rows = await page.getByTestId('portfolio-table').locator('tbody tr').allTextContents();
      expect(rows.some((r) => /AAPL.*My organization/.test(r))).toBe(true);
      expect(rows.some((r) => /AAPL.*Everyone/.test(r))).toBe(true);
      await screenshot(page, 'i17-07-portfolio-scopes');
      expect(b.errors.filter((e) => !/409/.test(e))).toEqual([]);
    } finally {
      await b.close();
    }
  });

  it('a duplicate is merged from the UI, and a mistake deleted', async () => {
    const b = await newBrowser();
    try {
      const page = b.page;
      await signIn(page, 'omA1');
      await newPrediction(page, 'DUPE', 'Dupe Corp', '2022');
      await page.getByLabel('Visible to').selectOption('personal');
      await fillRatios(page, { ltd: '30', debt: '2', cover: '5' });
      await page.getByRole('button', { name: 'Predict' }).click();
      await page.getByTestId('result-probability').waitFor();
      await page.getByLabel('Symbol').fill('DUPE');
      await page.getByLabel('Company name').fill('Dupe Corp');
      await page.getByLabel('Reporting year').fill('2023');
      await page.getByLabel('Visible to').selectOption('organization');
      await fillRatios(page, { ltd: '30', debt: '2', cover: '5' });
      await page.getByRole('button', { name: 'Predict' }).click();
      await page.getByTestId('company-choice').getByRole('button', { name: 'Create a separate DUPE visible to my organization' }).click();
      await page.getByTestId('result-probability').waitFor();
      const [personal] = await db.adminSql<{ id: string }[]>`select id from companies where symbol = 'DUPE' and access_level = 'personal'`;
      const [org] = await db.adminSql<{ id: string }[]>`select id from companies where symbol = 'DUPE' and access_level = 'organization'`;
      await page.evaluate(`history.pushState(null, '', '/companies/${personal!.id}'); dispatchEvent(new PopStateEvent('popstate'))`);
      await page.getByRole('heading', { level: 1, name: 'DUPE · Dupe Corp' }).waitFor();
      await page.getByTestId('same-symbol').getByRole('button', { name: 'Merge this company into it' }).click();
      await page.getByText('DUPE merged: its predictions are now here.').waitFor();
      expect(page.url()).toContain(`/companies/${org!.id}`);
      expect(await db.adminSql`select 1 from companies where id = ${personal!.id}`).toHaveLength(0);
      expect(await db.adminSql`select 1 from annual_predictions where company_id = ${org!.id}`).toHaveLength(2);
      await screenshot(page, 'i17-08-merged');

      await newPrediction(page, 'OOPS', 'Typo Inc', '2024');
      await fillRatios(page, { ltd: '30', debt: '2', cover: '5' });
      await page.getByRole('button', { name: 'Predict' }).click();
      await page.getByRole('link', { name: /OOPS · Typo Inc →/ }).click();
      await page.getByRole('button', { name: 'Delete this company…' }).click();
      expect(await page.getByRole('group', { name: 'Confirm deletion' }).textContent()).toMatch(/and its 1 prediction\?/);
      await screenshot(page, 'i17-09-delete-confirm');
      await page.getByRole('button', { name: 'Yes, delete it' }).click();
      await page.getByRole('heading', { level: 1, name: 'Portfolio' }).waitFor();
      expect(await db.adminSql`select 1 from companies where symbol = 'OOPS'`).toHaveLength(0);
      expect(b.errors.filter((e) => !/409/.test(e))).toEqual([]);
    } finally {
      await b.close();
    }
  });

  it('the bulk page shows values as in the file and remembers its job when you come back', async () => {
    const b = await newBrowser();
    try {
      const page = b.page;
      await signIn(page, 'omA1');
      const file = path.join(dir, 'few.csv');
      writeFileSync(file, 'company_symbol,company_name,reporting_year,long_term_debt_to_total_capital,total_debt_to_ebitda,net_income_margin,ebit_to_interest_expense,return_on_assets\nBK1,Bulk One,2024,30,2,5,6,4\nBK2,Bulk Two,2024,30,=SUM(A1),5,6,4\nBK3,Bulk Three,2024,,,5,,\n');
      await page.getByRole('link', { name: 'Bulk upload' }).click();
      await page.setInputFiles('#bulk-file', file);
      await page.getByRole('button', { name: 'Upload and score' }).click();
      await page.getByTestId('job-status').filter({ hasText: /Completed/ }).waitFor({ timeout: 60_000 });
      const errors = page.getByTestId('error-rows');
      const t = (await errors.textContent()) ?? '';
      expect(t).toContain('=SUM(A1)');
      expect(t).not.toContain("'=SUM(A1)");
      expect(t).toMatch(/Value in the file/);
      expect(t).toMatch(/is not reported/);
      await page.getByRole('link', { name: 'Dashboard' }).click();
      await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
      await page.getByRole('link', { name: 'Bulk upload' }).click();
      await page.getByTestId('job-status').filter({ hasText: /Completed: 1 rows scored, 2 failed/ }).waitFor();
      await screenshot(page, 'i17-10-bulk-remembered');
    } finally {
      await b.close();
    }
  });

  it('context: implied ratings beside PDs, the dashboard by reporting year, partial search, filters in the URL', async () => {
    const b = await newBrowser();
    try {
      const page = b.page;
      await signIn(page, 'super');
      // The dashboard by reporting year (AAPL 2024, F 2024 and the fixture world's 2024 rows).
      const byYear = page.getByTestId('by-year');
      await byYear.waitFor();
      expect(await byYear.locator('thead').textContent()).toContain('2024');
      expect(await byYear.textContent()).toMatch(/Consumer Discretionary/);
      // Every PD there has its implied rating beside it (drawn once the rating scale has loaded).
      await byYear.locator('.badge.rating').first().waitFor();
      expect(await byYear.locator('.badge.rating').count()).toBeGreaterThan(0);
      await screenshot(page, 'i17-12-dashboard-by-year');
      // Partial search: "App" finds Apple, and the filters go into the URL.
      await page.getByRole('link', { name: 'Portfolio' }).click();
      await page.getByTestId('portfolio-table').waitFor();
      await page.getByLabel('Search').fill('App');
      await page.getByTestId('portfolio-table').locator('tbody tr').first().filter({ hasText: 'AAPL' }).waitFor();
      await page.getByLabel('Sort by').selectOption('-annual_probability');
      await page.waitForURL(/\/portfolio\?q=App&sort=-annual_probability$/);
      expect(await page.getByTestId('portfolio-table').locator('.badge.rating').count()).toBeGreaterThan(0);
      await page.getByRole('link', { name: /AAPL/ }).first().click();
      await page.getByRole('heading', { level: 1, name: /AAPL/ }).waitFor();
      // Back restores the search and the sort from the URL.
      await page.goBack();
      await page.getByTestId('portfolio-table').waitFor();
      expect(await page.getByLabel('Search').inputValue()).toBe('App');
      expect(await page.getByLabel('Sort by').inputValue()).toBe('-annual_probability');
      await page.getByTestId('portfolio-table').locator('tbody tr').first().filter({ hasText: 'AAPL' }).waitFor();
      await screenshot(page, 'i17-13-portfolio-search-url');
      // Charts and sparklines: named images, never unnamed tab stops.
      await page.getByRole('link', { name: /AAPL/ }).first().click();
      await page.getByRole('heading', { name: 'What drove it' }).waitFor();
      const focusable = await page.evaluate<number>(`[...document.querySelectorAll('[role="img"] [tabindex], .recharts-wrapper [tabindex], svg[tabindex]')].filter((e) => e.tabIndex >= 0).length`);
      expect(focusable).toBe(0);
      // The dashed "Logistic" legend: at least 4.5:1 on white.
      const ratio = await page.evaluate<number>(`(() => {
        const el = [...document.querySelectorAll('.recharts-legend-item-text')].find((e) => e.textContent === 'Logistic');
        const rgb = getComputedStyle(el).color.match(/\\d+/g).map(Number).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        const L = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
        return 1.05 / (L + 0.05);
      })()`);
      expect(ratio).toBeGreaterThanOrEqual(4.5);
      expect(b.errors).toEqual([]);
    } finally {
      await b.close();
    }
  });

  it('a reload without "keep me signed in" leaves no open server session; a member is not offered to join again', async () => {
    const b = await newBrowser();
    try {
      const page = b.page;
      const open = async () => (await db.adminSql<{ n: number }[]>`select count(*)::int as n from user_sessions where user_id = ${world.users.omA1b.id} and revoked_at is null`)[0]!.n;
      const before = await open();
      await signIn(page, 'omA1b');
      expect(await open()).toBe(before + 1);
      await page.reload();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await expect.poll(open, { timeout: 10_000 }).toBe(before);
      await signIn(page, 'omA1b');
      await page.getByRole('link', { name: 'Administration' }).click();
      await page.getByTestId('membership').waitFor();
      expect(await page.getByRole('heading', { name: 'Join an organization' }).count()).toBe(0);
      await screenshot(page, 'i17-14-member-admin');
    } finally {
      await b.close();
    }
  });

  it('the dashboard and the company page do not scroll sideways at 390 px', async () => {
    const b = await newBrowser({ width: 390, height: 844 });
    try {
      const page = b.page;
      await signIn(page, 'super');
      // The dashboard first: its by-year table is wider than the phone and must scroll inside its card.
      await page.getByTestId('by-year').waitFor();
      expect(await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth')).toBeLessThanOrEqual(0);
      await page.evaluate(`history.pushState(null, '', '/companies/${aapl}'); dispatchEvent(new PopStateEvent('popstate'))`);
      await page.getByRole('heading', { level: 1, name: 'AAPL · Apple Inc.' }).waitFor();
      await page.getByRole('heading', { name: 'What drove it' }).waitFor();
      const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
      await screenshot(page, 'i17-11-company-390');
      expect(overflow).toBeLessThanOrEqual(0);
      expect(b.errors).toEqual([]);
    } finally {
      await b.close();
    }
  });
});
