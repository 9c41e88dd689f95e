// An axe-core audit of every page of the web app (WCAG 2.0/2.1 A and AA rules), signed in as a
// super admin (who sees every page) and signed out, at desktop width and on a phone: no serious
// or critical violation anywhere, and no page wider than its window (a wide table scrolls in its
// own region). A failure lists each violation with the elements it found.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { setWorldPasswords, TEST_PASSWORD } from '../helpers/app.js';
import { chromiumStatus, newBrowser, screenshot, startServer, type Server } from './harness.js';

const status = chromiumStatus();

async function audit(page: Page): Promise<string[]> {
  const r = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return r.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 5).map((n) => n.target.join(' ')).join(' | ')}`);
}

describe.skipIf(!status.run)('accessibility audit (axe-core, Chromium)', () => {
  let db: TestDatabase;
  let world: World;
  let server: Server;

  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 6 });
    world = await buildWorld(db.adminSql);
    await setWorldPasswords(db, world);
    server = await startServer(db);
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  /** Waits for the page's heading and for its data (no "Loading…" left on screen). */
  async function settle(page: Page, heading: string | RegExp) {
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
    // (A string: the function runs in the page, which this file's types do not describe.)
    await page.waitForFunction(`!document.querySelector('[aria-busy="true"]') && !/\\bLoading\\b|Checking the platform|Measuring/.test(document.body.innerText)`, undefined, { timeout: 20_000 }).catch(() => {});
    await page.waitForTimeout(300); // charts draw after their data arrives
  }

  for (const [label, viewport] of [['desktop', { width: 1280, height: 900 }], ['phone', { width: 390, height: 844 }]] as const) {
    it(`has no serious or critical violation, and no page wider than the window, on any page (${label})`, async () => {
      const b = await newBrowser(viewport);
      const found: string[] = [];
      try {
        const page = b.page;
        page.setDefaultTimeout(20_000);
        await page.goto(server.url + '/sign-in');
        await settle(page, 'Sign in');
        for (const v of await audit(page)) found.push(`/sign-in: ${v}`);
        await page.getByLabel('E-mail or username').fill('super');
        await page.getByLabel('Password').fill(TEST_PASSWORD);
        // A cookie session, so that every page can be opened by its address.
        await page.getByLabel('Keep me signed in on this device').check();
        await page.getByLabel('Password').press('Enter');
        await settle(page, 'Dashboard');
        const pages: Array<[string, string | RegExp]> = [
          ['/', 'Dashboard'],
          ['/portfolio', 'Portfolio'],
          [`/companies/${world.companies.orgA1}`, /.+/],
          ['/symbols/ORGA1', /.+/],
          ['/predict', 'New prediction'],
          ['/bulk', /Bulk upload/],
          ['/alerts', 'Alerts'],
          ['/ops', 'Operations'],
          ['/admin', 'Administration'],
        ];
        for (const [path, heading] of pages) {
          await page.goto(server.url + path);
          await settle(page, heading);
          for (const v of await audit(page)) found.push(`${path}: ${v}`);
          // Nothing makes the page itself scroll sideways (wide tables scroll in their own region).
          const width = (await page.evaluate('document.documentElement.scrollWidth')) as number;
          if (width > viewport.width) found.push(`${path}: the page is ${width} px wide in a ${viewport.width} px window`);
          if (label === 'phone') await screenshot(page, `a11y-phone${path.replace(/[^a-z0-9]+/gi, '-')}`);
        }
      } finally {
        await b.close();
      }
      expect(found, found.join('\n')).toEqual([]);
    }, 180_000);
  }
});
