// Hostile input corpus against the whole API (every route, enumerated from the app itself):
// every malformed request is refused with a 4xx, never a 5xx; nothing in the database changes
// (row counts and contents of every table); the process stays healthy (/health/ready 200, RSS
// bounded). Bulk uploads get their own hostile files: zip bombs, binary, oversize, traversal
// and NUL in file names, formula cells.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.js';
import { buildServices } from '../../src/entrypoints/services.js';
import { BulkUploadService } from '../../src/services/bulk/service.js';
import { createQueueConnection } from '../../src/queue/connection.js';
import { createProducers, type Producers } from '../../src/queue/producers.js';
import { loadConfig } from '../../src/config/index.js';
import { createPool, type Sql } from '../../src/db/pool.js';
import { runBulkJob } from '../../src/services/bulk/pipeline.js';
import { getBulkJob } from '../../src/repositories/bulk-jobs.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/env.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { engineOnce, setWorldPasswords, TEST_PASSWORD } from '../helpers/app.js';
import { makeRows, toCsv } from '../bulk/helpers.js';
import { generateCorpus, type HostileRequest, type OpenApiDoc } from './corpus.js';
import { makeZip } from '../helpers/zip.js';

let db: TestDatabase;
let world: World;
let app: FastifyInstance;
let redis: Redis;
let queueConn: Redis;
let producers: Producers;
let monitorSql: Sql;
const uploadDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'accunode-hostile-')), 'a', 'b', 'uploads');
const prefix = `{accunode-h-${randomBytes(4).toString('hex')}}`;
const tokens: Record<string, string> = {};
const ip = `127.9.${Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
const MAX_UPLOAD = 2 * 1024 * 1024;
/** Routes deliberately outside the corpus: liveness/readiness (checked at the end) and docs. */
const SKIP = new Set(['GET /health', 'GET /health/ready']);
/** Routes that work without a session: refused for their body, not for the missing token. */
const PUBLIC = new Set(['POST /api/v1/auth/register', 'POST /api/v1/auth/login', 'POST /api/v1/auth/verify']);

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 8 });
  world = await buildWorld(db.adminSql);
  await setWorldPasswords(db, world);
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 2, enableAutoPipelining: true, commandTimeout: 2000 });
  queueConn = createQueueConnection(TEST_REDIS_URL, 'hostile');
  producers = createProducers(queueConn, prefix);
  const config = loadConfig({ ACCUNODE_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'accunode-hostile-data-')) });
  const services = buildServices(
    { sql: db.appSql, redis, log, engine: await engineOnce() },
    { SESSION_TTL_SECONDS: 86_400, SESSION_ABSOLUTE_TTL_SECONDS: 30 * 86_400, RATE_LIMIT_LOGIN: 100_000 },
  );
  monitorSql = createPool(db.urlAs('monitoring_user'), { max: 2 });
  app = await buildApp({
    log,
    sql: db.appSql,
    redis,
    services,
    webRoot: false,
    rateLimits: { default: 1e6, predictions: 1e6, bulk: 1e6, admin: 1e6, anonymous: 1e6, login: 1e6 },
    modelsReady: () => true,
    ops: { sql: db.appSql, redis, monitor: { sql: monitorSql, redis, replicas: [], config, log }, readReplicas: 0 },
    bulk: { uploads: new BulkUploadService({ sql: db.appSql, producers, uploadDir, cursors: services.cursors }), uploadDir, maxUploadBytes: MAX_UPLOAD },
  });
  await app.ready();
  for (const k of ['super', 'taA', 'omA1'] as const) {
    const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: ip, payload: { login: k, password: TEST_PASSWORD } });
    expect(res.statusCode, res.body).toBe(200);
    tokens[k] = res.json().token;
  }
}, 120_000);

afterAll(async () => {
  await app?.close();
  await producers?.queue('bulk').obliterate({ force: true }).catch(() => {});
  await producers?.close();
  await queueConn?.quit();
  redis?.disconnect();
  await monitorSql?.end({ timeout: 2 });
  await db?.drop();
});

/** Row count and a digest of the contents of every table (detects inserts, updates and deletes). */
async function snapshot(): Promise<Record<string, string>> {
  const tables = await db.adminSql<{ s: string; t: string }[]>`
    select schemaname as s, relname as t from pg_stat_user_tables order by 1, 2`;
  const out: Record<string, string> = {};
  for (const { s, t } of tables) {
    const [r] = await db.adminSql.unsafe<[{ n: number; h: string | null }]>(
      `select count(*)::int as n, md5(string_agg(x::text, '|' order by x::text)) as h from "${s}"."${t}" x`,
    );
    out[`${s}.${t}`] = `${r.n}:${r.h ?? ''}`;
  }
  return out;
}

function send(r: Pick<HostileRequest, 'method' | 'url' | 'as' | 'headers' | 'payload'>): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  if (r.as === 'super') headers.authorization = `Bearer ${tokens.super}`;
  if (r.as === 'tenantA') headers.authorization = `Bearer ${tokens.taA}`;
  if (r.as === 'garbage') headers.authorization = 'Bearer garbage-token';
  return app.inject({ method: r.method as 'GET', url: r.url, remoteAddress: ip, headers, ...(r.payload !== undefined ? { payload: r.payload } : {}) });
}

async function runAll<T>(items: T[], concurrency: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

/** Full paths (with at least one method) from printRoutes' tree. */
function servedRoutes(tree: string): string[] {
  const stack: string[] = [];
  const out: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    if (m[3]) out.push(stack.join(''));
  }
  return out;
}

function multipart(content: Buffer | string, filename: string, type = 'text/csv', field = 'file') {
  const boundary = '----hostile' + randomBytes(6).toString('hex');
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`),
    Buffer.isBuffer(content) ? content : Buffer.from(content),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { payload: body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** Hostile bulk uploads that must be refused at the door (4xx), with nothing recorded. */
async function bulkCorpus(): Promise<Array<Omit<HostileRequest, 'route'>>> {
  const csv = toCsv('annual', makeRows('annual', 5, { seed: 7, symbolPrefix: 'HB' }));
  const bomb = makeZip([['[Content_Types].xml', Buffer.from('<Types/>')], ['xl/workbook.xml', Buffer.from('<workbook/>')], ['xl/worksheets/sheet1.xml', Buffer.alloc(50 * 1024 * 1024)]], deflateRawSync);
  const notXlsx = makeZip([['word/document.xml', Buffer.from('<doc/>')]], deflateRawSync);
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(2000)]);
  const xls = Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(1000)]);
  const url = '/api/v1/predictions/bulk?type=annual';
  const mk = (kind: string, m: { payload: Buffer; headers: Record<string, string> }, u = url): Omit<HostileRequest, 'route'> => ({ kind: `bulk:${kind}`, method: 'POST', url: u, as: 'tenantA', headers: m.headers, payload: m.payload });
  const boundary = 'xyz' + randomBytes(4).toString('hex');
  return [
    mk('zip-bomb-xlsx', multipart(bomb, '../../etc/passwd.xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet')),
    mk('zip-not-workbook', multipart(notXlsx, 'doc.xlsx', 'application/octet-stream')),
    mk('truncated-zip', multipart(bomb.subarray(0, 500), 'cut.xlsx', 'application/octet-stream')),
    mk('binary-png-traversal-name', multipart(png, '../../etc/passwd')),
    mk('legacy-xls', multipart(xls, 'old.xls', 'application/vnd.ms-excel')),
    mk('empty-file', multipart('', 'empty.csv')),
    mk('nul-in-csv', multipart(csv.replace('\n', '\u0000\n'), 'nul.csv')),
    mk('latin1-csv', multipart(Buffer.from('company_symbol,company_name\nA,Caf\xe9\n', 'latin1'), 'latin.csv')),
    mk('wrong-field', multipart(csv, 'a.csv', 'text/csv', 'upload')),
    mk('wrong-type', multipart(csv, 'a.csv', 'image/png')),
    mk('oversize', multipart(Buffer.alloc(MAX_UPLOAD + 1024 * 1024, 0x41), 'huge.csv')),
    mk('bad-query-type', multipart(csv, 'a.csv'), '/api/v1/predictions/bulk?type=../../etc'),
    mk('bad-access-level', multipart(csv, 'a.csv'), '/api/v1/predictions/bulk?type=annual&access_level=%00'),
    mk('no-boundary', { payload: Buffer.from('--x\r\n\r\n'), headers: { 'content-type': 'multipart/form-data' } }),
    mk('truncated-multipart', { payload: Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\nContent-Type: text/csv\r\n\r\nabc`), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }),
    mk('garbage-multipart', { payload: randomBytes(4096), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }),
    mk('json-not-multipart', { payload: Buffer.from('{"file":"x"}'), headers: { 'content-type': 'application/json' } }),
  ];
}

describe('hostile input corpus', () => {
  it('every route: each malformed request is refused with a 4xx; nothing is written; the process stays healthy', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as OpenApiDoc;
    // Every route the app serves is in the OpenAPI document (or deliberately left out), so the
    // corpus reaches new routes by itself.
    const served = app.printRoutes({ commonPrefix: false });
    const documented = new Set(Object.keys(doc.paths).map((p) => p.replace(/\{(\w+)\}/g, ':$1')));
    const undocumented = servedRoutes(served).filter((p) => !documented.has(p) && !/^\/(docs|metrics|\*)/.test(p) && p !== '/');
    expect(undocumented, 'served routes missing from /docs/json (the corpus could not reach them)').toEqual([]);

    const foreignIds = [world.companies.orgB1, world.companies.persB1, world.annual.orgB1, world.quarterly.persB1, world.users.omB1.id, world.users.taB.id, world.orgs.B1, world.tenants.B];
    const corpus = [...generateCorpus({ doc, foreignIds, publicRoutes: PUBLIC, skip: SKIP }), ...(await bulkCorpus()).map((r) => ({ ...r, route: 'POST /api/v1/predictions/bulk' }))];
    const perRoute = new Map<string, number>();
    for (const r of corpus) perRoute.set(r.route, (perRoute.get(r.route) ?? 0) + 1);
    const routes = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).filter((k) => !SKIP.has(k));
    for (const k of routes) expect(perRoute.get(k) ?? 0, `requests for ${k}`).toBeGreaterThanOrEqual(5);

    const before = await snapshot();
    const uploadsBefore = existsSync(uploadDir) ? readdirSync(uploadDir).length : 0;
    const rss0 = process.memoryUsage().rss;
    let rssMax = rss0;
    const bad: string[] = [];
    const statuses = new Map<number, number>();
    const t0 = Date.now();
    await runAll(corpus, 8, async (r) => {
      let res: LightMyRequestResponse;
      try {
        res = await send(r);
      } catch (err) {
        bad.push(`${r.kind} ${r.method} ${r.url.slice(0, 120)} → threw ${(err as Error).message}`);
        return;
      }
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode < 400 || res.statusCode >= 500) bad.push(`${r.kind} ${r.method} ${r.url.slice(0, 120)} → ${res.statusCode} ${res.body.slice(0, 200)}`);
      else if (res.statusCode !== 404 && res.statusCode !== 415 && res.headers['content-type']?.toString().includes('json')) {
        // Refusals keep the error contract.
        const body = res.json() as { error?: { code?: string } };
        if (!body.error?.code) bad.push(`${r.kind} ${r.method} ${r.url.slice(0, 120)} → ${res.statusCode} without an error code: ${res.body.slice(0, 200)}`);
      }
      rssMax = Math.max(rssMax, process.memoryUsage().rss);
    });
    const seconds = (Date.now() - t0) / 1000;
    const after = await snapshot();
    const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
    const ready = await app.inject({ method: 'GET', url: '/health/ready' });
    const summary = {
      requests: corpus.length,
      routes: routes.length,
      seconds,
      statuses: Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])),
      rss_mb: { start: Math.round(rss0 / 1e6), max: Math.round(rssMax / 1e6), end: Math.round(process.memoryUsage().rss / 1e6) },
      tables_changed: changed,
    };
    console.log('hostile corpus:', JSON.stringify(summary));
    expect(bad, `${bad.length} requests not refused with a 4xx`).toEqual([]);
    expect(changed, 'tables written by refused requests').toEqual([]);
    expect(existsSync(uploadDir) ? readdirSync(uploadDir).length : 0, 'refused uploads left files behind').toBe(uploadsBefore);
    expect(existsSync(path.resolve(uploadDir, '../../etc/passwd'))).toBe(false);
    expect(ready.statusCode, ready.body).toBe(200);
    expect(rssMax - rss0, 'RSS growth during the corpus').toBeLessThan(600 * 1024 * 1024);
  }, 120_000);

  it('an accepted upload with a traversal file name and formula cells: stored inside the upload dir under its own name; formulas become row errors, never values', async () => {
    const rows = makeRows('annual', 6, { seed: 9, symbolPrefix: 'HF' });
    rows[1]!.net_income_margin = '=HYPERLINK("http://127.0.0.1/x","y")';
    rows[2]!.return_on_assets = '@SUM(A1:A9)';
    rows[3]!.company_name = '=cmd|" /C calc"!A0';
    const m = multipart(toCsv('annual', rows), '../../etc/passwd', 'text/csv');
    const res = await send({ method: 'POST', url: '/api/v1/predictions/bulk?type=annual', as: 'tenantA', headers: m.headers, payload: m.payload });
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json().job_id as string;
    expect(existsSync(path.resolve(uploadDir, '../../etc/passwd'))).toBe(false);
    expect(readdirSync(uploadDir).every((f) => /^[0-9a-f-]{36}\.(csv|xlsx)$/.test(f))).toBe(true);
    const outcome = await runBulkJob({ sql: db.appSql, engine: await engineOnce() }, world.users.taA.id, id);
    expect(outcome.status).toBe('completed');
    const job = (await getBulkJob(db.appSql, world.users.taA.id, id))!;
    expect(job.rows_failed).toBeGreaterThanOrEqual(2);
    const [formulas] = await db.adminSql<[{ n: number }]>`select count(*)::int as n from companies where name like '=%' or name like '@%' or name like '+%'`;
    // A company name is text, not a number: stored as given, but never as a formula when exported.
    expect(formulas.n).toBeLessThanOrEqual(1);
    const errs = await send({ method: 'GET', url: `/api/v1/jobs/${id}/errors`, as: 'tenantA' });
    expect(errs.statusCode).toBe(200);
    for (const line of errs.body.split('\n').slice(1)) for (const cell of line.split(',')) expect(cell).not.toMatch(/^"?[=@+]/);
  }, 60_000);
});
