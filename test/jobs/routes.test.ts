// The bulk/jobs HTTP routes with a test-only principal hook (the real auth hook sets
// request.principal from a session): upload → 202, 413, 415, job state, errors CSV with
// formula-injection-safe cells, cancellation, and someone else's job is a 404.
import { Cursors } from '../../src/repositories/keyset.js';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/env.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { jobRoutes } from '../../src/http/routes/jobs/routes.js';
import { BulkUploadService } from '../../src/services/bulk/service.js';
import { DomainError } from '../../src/domain/errors.js';
import type { Principal } from '../../src/domain/principal.js';
import { createQueueConnection } from '../../src/queue/connection.js';
import { createProducers, type Producers } from '../../src/queue/producers.js';
import { runBulkJob } from '../../src/services/bulk/pipeline.js';
import { loadModels } from '../../src/services/model-store.js';
import { makeRows, sharedStringsBomb, tmpDir, toCsv } from '../bulk/helpers.js';
import { existsSync, readFileSync } from 'node:fs';

let db: TestDatabase;
let world: World;
let app: FastifyInstance;
let connection: Redis;
let producers: Producers;
const uploadDir = tmpDir('accunode-uploads-');
const prefix = `{accunode-t-${randomBytes(4).toString('hex')}}`;
const STATUS: Record<string, number> = { bad_request: 400, validation_failed: 422, unauthorized: 401, forbidden: 403, not_found: 404, conflict: 409, payload_too_large: 413, unavailable: 503 };

beforeAll(async () => {
  db = await createTestDatabase();
  world = await buildWorld(db.adminSql);
  connection = createQueueConnection(TEST_REDIS_URL, 'routes-test');
  producers = createProducers(connection, prefix);
  app = Fastify().withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, _req, reply) => {
    if (err instanceof DomainError) return reply.status(STATUS[err.code] ?? 500).send({ error: { code: err.code, message: err.message, details: err.details } });
    if (err.validation) return reply.status(400).send({ error: { code: 'validation_failed', message: err.message } });
    return reply.status(err.statusCode ?? 500).send({ error: { code: 'error', message: err.message } });
  });
  // Test-only stand-in for the auth hook: the principal comes from a header.
  app.addHook('onRequest', async (req) => {
    const id = req.headers['x-test-user'];
    const u = Object.values(world.users).find((x) => x.id === id);
    if (u) (req as typeof req & { principal?: Principal }).principal = { userId: u.id, role: u.role, tenantId: u.tenant, organizationId: u.org };
  });
  await app.register(jobRoutes, { prefix: '/api/v1', deps: { uploads: new BulkUploadService({ sql: db.appSql, producers, uploadDir, cursors: Cursors.fromDatabase(db.appSql) }), uploadDir, maxUploadBytes: 200_000 } });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await producers.queue('bulk').obliterate({ force: true }).catch(() => {});
  await producers.close();
  await connection.quit();
  await db?.drop();
});

function multipart(content: string | Buffer, filename: string, type: string) {
  const boundary = '----accunode' + randomBytes(6).toString('hex');
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`),
    Buffer.isBuffer(content) ? content : Buffer.from(content),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { payload: body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

const as = (key: keyof World['users']) => ({ 'x-test-user': world.users[key].id });

describe('bulk/jobs routes', () => {
  it('upload → 202 {job_id} queued; the worker pipeline runs it; GET shows counts, throughput, ETA; errors CSV is injection-safe', async () => {
    const rows = makeRows('annual', 300, { seed: 21, symbolPrefix: 'U' });
    rows[10]!.net_income_margin = '=HYPERLINK("http://evil")';
    rows[20]!.return_on_assets = '@SUM(A1)';
    rows[30]!.company_symbol = '-bad';
    const m = multipart(toCsv('annual', rows), 'upload.csv', 'text/csv');
    const res = await app.inject({ method: 'POST', url: '/api/v1/predictions/bulk?type=annual', headers: { ...m.headers, ...as('omA1') }, payload: m.payload });
    expect(res.statusCode, res.body).toBe(202);
    const { job_id } = res.json<{ job_id: string }>();
    const queued = await app.inject({ method: 'GET', url: `/api/v1/jobs/${job_id}`, headers: as('omA1') });
    expect(queued.json()).toMatchObject({ id: job_id, status: 'queued', type: 'annual', access_level: 'organization', rows_processed: 0 });
    const qjob = await producers.queue('bulk').getJob(job_id);
    expect(qjob!.data).toEqual({ jobId: job_id, userId: world.users.omA1.id });
    expect(readdirSync(uploadDir).length).toBeGreaterThan(0);

    await runBulkJob({ sql: db.appSql, engine: await loadModels() }, world.users.omA1.id, job_id);
    const done = (await app.inject({ method: 'GET', url: `/api/v1/jobs/${job_id}`, headers: as('omA1') })).json();
    expect(done).toMatchObject({ status: 'completed', rows_total: 300, rows_processed: 300, rows_succeeded: 297, rows_failed: 3, eta_seconds: 0 });
    expect(done.throughput_rows_per_second).toBeGreaterThan(0);

    const csv = await app.inject({ method: 'GET', url: `/api/v1/jobs/${job_id}/errors`, headers: as('omA1') });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe('line,column,value,reason,kind');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(/^12,net_income_margin,"'=HYPERLINK\(""http:\/\/evil""\)",/);
    expect(lines[2]).toMatch(/^22,return_on_assets,'@SUM\(A1\),/);
    expect(lines[3]).toMatch(/^32,company_symbol,'-bad,/);
    // No cell of the CSV starts with a formula trigger.
    for (const l of lines.slice(1)) for (const cell of l.split(',')) expect(cell.replace(/^"/, '')).not.toMatch(/^[=+@\t\r]/);

    // Someone else (even in the same organization) does not see it; their managers do.
    expect((await app.inject({ method: 'GET', url: `/api/v1/jobs/${job_id}`, headers: as('omA1b') })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: `/api/v1/jobs/${job_id}/errors`, headers: as('omB1') })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: `/api/v1/jobs/${job_id}`, headers: as('oaA1') })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: `/api/v1/jobs/${job_id}` })).statusCode).toBe(401);
  });

  it('a personal upload stays personal: its org admin and tenant admin get 404 for the job, its errors and a cancel, and never list it', async () => {
    const rows = makeRows('annual', 5, { seed: 23, symbolPrefix: 'P' });
    rows[1]!.company_name = '';
    rows[2]!.net_income_margin = 'Confidential Target Corp';
    const m = multipart(toCsv('annual', rows), 'acquisition-targets.csv', 'text/csv');
    const res = await app.inject({ method: 'POST', url: '/api/v1/predictions/bulk?type=annual&access_level=personal', headers: { ...m.headers, ...as('omA1') }, payload: m.payload });
    expect(res.statusCode, res.body).toBe(202);
    const { job_id } = res.json<{ job_id: string }>();
    await runBulkJob({ sql: db.appSql, engine: await loadModels() }, world.users.omA1.id, job_id);
    const own = await app.inject({ method: 'GET', url: `/api/v1/jobs/${job_id}/errors`, headers: as('omA1') });
    expect(own.body).toMatch(/Confidential Target Corp/);
    expect((await app.inject({ method: 'GET', url: `/api/v1/jobs/${job_id}`, headers: as('omA1') })).json()).toMatchObject({ file_name: 'acquisition-targets.csv', access_level: 'personal' });
    for (const admin of ['oaA1', 'taA'] as const) {
      for (const [method, url] of [['GET', `/api/v1/jobs/${job_id}`], ['GET', `/api/v1/jobs/${job_id}/errors`], ['DELETE', `/api/v1/jobs/${job_id}`]] as const) {
        const r = await app.inject({ method, url, headers: as(admin) });
        expect(r.statusCode, `${admin} ${method} ${url}`).toBe(404);
        expect(r.body).not.toMatch(/acquisition-targets|Confidential/);
      }
      const list = await app.inject({ method: 'GET', url: '/api/v1/jobs', headers: as(admin) });
      expect(list.body).not.toMatch(/acquisition-targets/);
    }
    // Organization-level uploads stay visible to those who manage the uploader (first test).
  });

  it('413 above the size limit, 415 for a wrong content type, 422 for content that is not CSV/XLSX or a bad access level', async () => {
    const big = multipart('a,b\n' + 'x'.repeat(300_000), 'big.csv', 'text/csv');
    const r413 = await app.inject({ method: 'POST', url: '/api/v1/predictions/bulk?type=annual', headers: { ...big.headers, ...as('uA') }, payload: big.payload });
    expect(r413.statusCode).toBe(413);
    expect(r413.json().error.code).toBe('payload_too_large');

    const png = multipart(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]), 'x.png', 'image/png');
    const r415 = await app.inject({ method: 'POST', url: '/api/v1/predictions/bulk?type=annual', headers: { ...png.headers, ...as('uA') }, payload: png.payload });
    expect(r415.statusCode).toBe(415);
    const json = await app.inject({ method: 'POST', url: '/api/v1/predictions/bulk?type=annual', headers: { 'content-type': 'application/json', ...as('uA') }, payload: '{}' });
    expect(json.statusCode).toBe(415);

    const bin = multipart(Buffer.from([0, 1, 2, 3, 0xff]), 'x.csv', 'text/csv');
    const r422 = await app.inject({ method: 'POST', url: '/api/v1/predictions/bulk?type=annual', headers: { ...bin.headers, ...as('uA') }, payload: bin.payload });
    expect(r422.statusCode).toBe(422);
    expect(r422.json().error.message).toMatch(/not a CSV or XLSX/);

    const ok = multipart(toCsv('annual', makeRows('annual', 2)), 'a.csv', 'text/csv');
    const lvl = await app.inject({ method: 'POST', url: '/api/v1/predictions/bulk?type=annual&access_level=system', headers: { ...ok.headers, ...as('uA') }, payload: ok.payload });
    expect(lvl.statusCode).toBe(422);
    const badType = await app.inject({ method: 'POST', url: '/api/v1/predictions/bulk?type=weekly', headers: { ...ok.headers, ...as('uA') }, payload: ok.payload });
    expect(badType.statusCode).toBe(400);

    // An XLSX whose zip directory declares 2,000 bytes of shared strings that inflate to 64 MB:
    // refused at the door by what inflating actually yields; no job, no file left behind.
    const jobsBefore = await db.adminSql<{ n: number }[]>`select count(*)::int as n from bulk_upload_jobs`;
    const filesBefore = readdirSync(uploadDir).length;
    const { file } = sharedStringsBomb(tmpDir(), 64 * 1024 * 1024);
    const bomb = multipart(readFileSync(file), 'bomb.xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    const rBomb = await app.inject({ method: 'POST', url: '/api/v1/predictions/bulk?type=annual', headers: { ...bomb.headers, ...as('uA') }, payload: bomb.payload });
    expect(rBomb.statusCode, rBomb.body).toBe(422);
    expect(rBomb.json().error.message).toMatch(/^file: XLSX refused: part xl\/sharedStrings\.xml inflates to more than the 2000 bytes its zip directory declares/);
    expect(await db.adminSql`select count(*)::int as n from bulk_upload_jobs`).toEqual(jobsBefore);
    expect(readdirSync(uploadDir).length).toBe(filesBefore);
  });

  it('DELETE cancels a queued job (it leaves the queue, its file is deleted; the job says what is kept); a finished job is 409', async () => {
    const m = multipart(toCsv('annual', makeRows('annual', 10, { symbolPrefix: 'V' })), 'c.csv', 'text/csv');
    const res = await app.inject({ method: 'POST', url: '/api/v1/predictions/bulk?type=annual', headers: { ...m.headers, ...as('uA') }, payload: m.payload });
    const { job_id } = res.json<{ job_id: string }>();
    const [{ file_path }] = await db.adminSql<[{ file_path: string }]>`select file_path from bulk_upload_jobs where id = ${job_id}`;
    expect(existsSync(file_path)).toBe(true);
    const del = await app.inject({ method: 'DELETE', url: `/api/v1/jobs/${job_id}`, headers: as('uA') });
    expect(del.statusCode).toBe(200);
    // A queued job's upload is never read again: cancelling deletes it.
    expect(existsSync(file_path)).toBe(false);
    expect(del.json()).toMatchObject({ status: 'cancelled', cancel_requested: true, cancellation: expect.stringMatching(/committed/) });
    expect(await producers.queue('bulk').getJob(job_id)).toBeUndefined();
    const again = await app.inject({ method: 'DELETE', url: `/api/v1/jobs/${job_id}`, headers: as('uA') });
    expect(again.statusCode).toBe(409);
    expect((await app.inject({ method: 'DELETE', url: `/api/v1/jobs/${job_id}`, headers: as('omB1') })).statusCode).toBe(404);
  });

  it('GET /jobs lists the caller\'s own jobs, newest first, a keyset page at a time', async () => {
    for (let i = 0; i < 5; i++) {
      await db.adminSql`insert into bulk_upload_jobs (user_id, organization_id, tenant_id, prediction_type, access_level, status, file_name, created_at)
                        values (${world.users.omA2.id}, ${world.orgs.A2}, ${world.tenants.A}, ${i % 2 ? 'quarterly' : 'annual'}, 'organization', 'completed',
                                ${'f' + i + '.csv'}, timestamp '2026-01-01' + ${i} * interval '1 hour')`;
    }
    const names: string[] = [];
    let cursor: string | null = null;
    type JobPage = { items: Array<{ file_name: string }>; next_cursor: string | null; total: number; total_relation: string };
    do {
      const r: { statusCode: number; body: string; json(): unknown } = await app.inject({ method: 'GET', url: `/api/v1/jobs?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, headers: as('omA2') });
      expect(r.statusCode, r.body).toBe(200);
      const page = r.json() as JobPage;
      expect(page).toMatchObject({ total: 5, total_relation: 'eq' });
      names.push(...page.items.map((j) => j.file_name));
      cursor = page.next_cursor;
    } while (cursor);
    expect(names).toEqual(['f4.csv', 'f3.csv', 'f2.csv', 'f1.csv', 'f0.csv']);
    const quarterly = await app.inject({ method: 'GET', url: '/api/v1/jobs?type=quarterly', headers: as('omA2') });
    expect(quarterly.json<{ items: Array<{ file_name: string }> }>().items.map((j) => j.file_name)).toEqual(['f3.csv', 'f1.csv']);
    // Nobody else's jobs, not even an admin's view of a member's.
    expect((await app.inject({ method: 'GET', url: '/api/v1/jobs', headers: as('taA') })).json<{ items: unknown[] }>().items).toEqual([]);
    expect((await app.inject({ method: 'GET', url: '/api/v1/jobs?cursor=garbage', headers: as('omA2') })).statusCode).toBe(400);
  });
});
