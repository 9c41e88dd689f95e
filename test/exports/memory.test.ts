// A large export in constant memory: the export runs in a child process whose heap is
// capped far below the file's size (a buffered export dies there) and whose resident memory is
// sampled while a slow reader takes the file; what it grows by after the first megabytes must
// stay a small fraction of what it wrote.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { loadOrganizationBook } from '../helpers/scale-data.js';

const run = promisify(execFile);
const HEAP_MB = 96;
const MB = 1024 * 1024;
// 250,000 rows in the suite (about 59 MB of CSV and 38 MB of XLSX, each well over the bound
// below, so an export that held the file would fail); EXPORT_MEMORY_ROWS=1000000 for the
// issue's figure (9 minutes here). A stream's own working set is about 10 MB at any size
// (11 MB measured at 200,000 rows and at 1,000,000).
const ROWS = Number(process.env.EXPORT_MEMORY_ROWS ?? 250_000);
const bound = (bytes: number) => Math.max(bytes / 4, 16 * MB);

let db: TestDatabase;
let w: World;

beforeAll(async () => {
  db = await createTestDatabase();
  w = await buildWorld(db.adminSql);
  await loadOrganizationBook(db.adminSql, { organizationId: w.orgs.A1, creatorId: w.users.omA1.id, predictions: ROWS });
}, 600_000);
afterAll(async () => {
  await db?.drop();
});

async function exportInChild(format: 'csv' | 'xlsx') {
  const child = fileURLToPath(new URL('./memory-child.ts', import.meta.url));
  const u = w.users.omA1;
  const { stdout } = await run(process.execPath, [`--max-old-space-size=${HEAP_MB}`, '--import', 'tsx', child, db.appUrl, u.id, u.role, format], {
    maxBuffer: MB,
    timeout: 900_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as { bytes: number; rows: number; warmRss: number; peakRss: number };
}

describe('a large export', () => {
  it(`streams ${ROWS.toLocaleString('en-US')} rows of CSV in constant memory`, async () => {
    const r = await exportInChild('csv');
    // The world's own annual predictions are visible to omA1 too.
    expect(r.rows).toBeGreaterThanOrEqual(ROWS);
    // About 235 bytes a row of CSV, 154 of XLSX (measured at 1,000,000 rows).
    expect(r.bytes).toBeGreaterThan(ROWS * 150);
    const grew = r.peakRss - r.warmRss;
    console.log(`csv: ${r.rows} rows, ${Math.round(r.bytes / MB)} MB written, rss ${Math.round(r.warmRss / MB)} → peak ${Math.round(r.peakRss / MB)} MB`);
    expect(grew).toBeLessThan(bound(r.bytes));
  }, 900_000);

  it(`streams ${ROWS.toLocaleString('en-US')} rows of XLSX in constant memory`, async () => {
    const r = await exportInChild('xlsx');
    expect(r.rows).toBeGreaterThanOrEqual(ROWS);
    const grew = r.peakRss - r.warmRss;
    console.log(`xlsx: ${r.rows} rows, ${Math.round(r.bytes / MB)} MB written, rss ${Math.round(r.warmRss / MB)} → peak ${Math.round(r.peakRss / MB)} MB`);
    expect(r.bytes).toBeGreaterThan(ROWS * 40);
    expect(grew).toBeLessThan(bound(r.bytes));
  }, 900_000);
});
