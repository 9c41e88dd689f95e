/**
 * Bulk uploads and their jobs:
 *   POST   /predictions/bulk?type=annual|quarterly[&access_level=…]  multipart "file" → 202 {job_id}
 *   GET    /jobs/{id}          state, counts, throughput, ETA
 *   GET    /jobs/{id}/errors   text/csv: line, column, value, reason, kind (formula-injection safe)
 *   DELETE /jobs/{id}          cancel (committed chunks are kept, as the job says)
 *
 * The upload is streamed to BULK_UPLOAD_DIR (never buffered), refused with 413 past the size
 * limit, sniffed (CSV or XLSX by content), recorded as the uploader and queued. Jobs are read
 * and cancelled as the caller (row-level security: someone else's job is a 404). Admins see the
 * organization-level jobs of those they manage, never their personal ones (the rule of personal
 * predictions): a member's personal job is a 404 to them and in no list.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import multipart from '@fastify/multipart';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { DomainError } from '../../../domain/errors.js';
import type { Principal } from '../../../domain/principal.js';
import type { BulkUploadService } from '../../../services/bulk/service.js';
import { PageOf, Paging, pageRequest } from '../../schemas.js';

export interface JobRoutesDeps {
  uploads: BulkUploadService;
  /** BULK_UPLOAD_DIR: shared with the workers (the upload is streamed here, then submitted). */
  uploadDir: string;
  /** BULK_MAX_UPLOAD_BYTES. */
  maxUploadBytes: number;
}

const ACCEPTED_TYPES = new Set([
  'text/csv',
  'application/csv',
  'text/plain',
  'text/comma-separated-values',
  'application/vnd.ms-excel',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/octet-stream',
]);

const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) }) });
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });
const JobBody = Type.Object(
  {
    id: Type.String(),
    type: Type.String(),
    status: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('completed'), Type.Literal('failed'), Type.Literal('cancelled')]),
    access_level: Type.String(),
    file_name: Type.Union([Type.String(), Type.Null()]),
    file_size: Type.Union([Type.Number(), Type.Null()]),
    rows_total: Type.Union([Type.Integer(), Type.Null()]),
    rows_processed: Type.Integer(),
    rows_succeeded: Type.Integer(),
    rows_failed: Type.Integer(),
    rows_superseded: Type.Integer(),
    throughput_rows_per_second: Type.Union([Type.Number(), Type.Null()]),
    eta_seconds: Type.Union([Type.Number(), Type.Null()]),
    error_message: Type.Union([Type.String(), Type.Null()]),
    note: Type.Union([Type.String(), Type.Null()]),
    cancel_requested: Type.Boolean(),
    cancellation: Type.String(),
    attempts: Type.Integer(),
    chunks_committed: Type.Integer(),
    created_at: Type.String(),
    started_at: Type.Union([Type.String(), Type.Null()]),
    finished_at: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

function principalOf(req: FastifyRequest): Principal {
  const p = (req as FastifyRequest & { principal?: Principal }).principal;
  if (!p) throw new DomainError('unauthorized', 'sign in first (Authorization: Bearer <token>)');
  return p;
}

export const jobRoutes: FastifyPluginAsync<{ deps: JobRoutesDeps }> = async (fastify, { deps }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  await app.register(multipart, {
    limits: { fileSize: deps.maxUploadBytes, files: 1, fields: 10, parts: 12, fieldSize: 1024, headerPairs: 100 },
    throwFileSizeLimit: true,
  });

  app.post(
    '/predictions/bulk',
    {
      config: { rateLimitClass: 'bulk' },
      schema: {
        summary: 'Upload a CSV or XLSX of annual or quarterly rows; processed in the background',
        querystring: Type.Object(
          {
            type: Type.Union([Type.Literal('annual'), Type.Literal('quarterly')]),
            access_level: Type.Optional(Type.Union([Type.Literal('personal'), Type.Literal('organization'), Type.Literal('system')])),
          },
          { additionalProperties: false },
        ),
        response: { 202: Type.Object({ job_id: Type.String(), status: Type.String(), links: Type.Object({ self: Type.String(), errors: Type.String() }) }), 400: ErrorBody, 401: ErrorBody, 413: ErrorBody, 415: ErrorBody, 422: ErrorBody, 503: ErrorBody },
      },
    },
    async (req, reply) => {
      const principal = principalOf(req);
      if (!req.isMultipart())
        return reply.status(415).send({ error: { code: 'unsupported_media_type', message: 'send multipart/form-data with the CSV or XLSX file in the field "file"' } });
      // A malformed multipart body (no boundary, truncated, garbage) is the client's error.
      const part = await req.file().catch((err: Error & { statusCode?: number }) => {
        if (err.statusCode && err.statusCode < 500) throw err;
        throw Object.assign(new Error(`malformed multipart body: ${err.message}`), { statusCode: 400 });
      });
      if (!part || part.fieldname !== 'file') {
        part?.file.resume();
        throw new DomainError('validation_failed', 'file: missing (multipart field "file")', [{ field: 'file', message: 'missing' }]);
      }
      const mime = part.mimetype.split(';')[0]!.trim().toLowerCase();
      if (!ACCEPTED_TYPES.has(mime)) {
        part.file.resume();
        return reply.status(415).send({ error: { code: 'unsupported_media_type', message: `file: content type ${mime} is not accepted; upload CSV (text/csv) or XLSX` } });
      }
      await mkdir(deps.uploadDir, { recursive: true, mode: 0o700 });
      const ext = /\.xlsx$/i.test(part.filename) ? '.xlsx' : '.csv';
      const dest = path.join(deps.uploadDir, `${randomUUID()}${ext}`);
      try {
        await pipeline(part.file, createWriteStream(dest, { mode: 0o600 }));
        if (part.file.truncated) throw Object.assign(new Error('too large'), { code: 'FST_REQ_FILE_TOO_LARGE' });
      } catch (err) {
        await unlink(dest).catch(() => {});
        const code = (err as { code?: string }).code;
        if (code === 'FST_REQ_FILE_TOO_LARGE' || (err as { statusCode?: number }).statusCode === 413)
          throw new DomainError('payload_too_large', `file: larger than the limit of ${deps.maxUploadBytes} bytes`);
        // File-system errors (ENOSPC, EACCES…) are ours; anything else is the upload stream
        // breaking off (truncated or malformed multipart): the client's.
        if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) throw err;
        throw Object.assign(new Error(`malformed multipart body: ${(err as Error).message}`), { statusCode: 400 });
      }
      const job = await deps.uploads.submit(principal, { kind: req.query.type, accessLevel: req.query.access_level ?? null, filePath: dest, fileName: part.filename || null });
      return reply.status(202).send({ job_id: job.id, status: 'queued', links: { self: `/api/v1/jobs/${job.id}`, errors: `/api/v1/jobs/${job.id}/errors` } });
    },
  );

  app.get(
    '/jobs',
    {
      schema: {
        summary: 'Your bulk jobs, newest first, a keyset page at a time',
        querystring: Type.Object(
          {
            ...Paging,
            status: Type.Optional(Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('completed'), Type.Literal('failed'), Type.Literal('cancelled')])),
            type: Type.Optional(Type.Union([Type.Literal('annual'), Type.Literal('quarterly')])),
          },
          { additionalProperties: false },
        ),
        response: { 200: PageOf(JobBody), 400: ErrorBody, 401: ErrorBody },
      },
    },
    async (req) => {
      const filters = { ...(req.query.status ? { status: req.query.status } : {}), ...(req.query.type ? { type: req.query.type } : {}) };
      return deps.uploads.list(principalOf(req), filters, { ...pageRequest(req.query), sort: '-created_at' });
    },
  );

  app.get(
    '/jobs/:id',
    { schema: { summary: 'A bulk job: state, rows processed/succeeded/failed, throughput, ETA; 404 unless it is yours or an organization-level job of someone you manage', params: IdParams, response: { 200: JobBody, 404: ErrorBody } } },
    async (req) => deps.uploads.get(principalOf(req), req.params.id),
  );

  app.get(
    '/jobs/:id/errors',
    { schema: { summary: 'Row errors of a bulk job as CSV (line, column, value, reason, kind); 404 whenever GET /jobs/{id} is', params: IdParams } },
    async (req, reply) => {
      const { job, lines } = await deps.uploads.errorsCsv(principalOf(req), req.params.id);
      const body = Readable.from(lines);
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="job-${job.id}-errors.csv"`)
        .header('x-content-type-options', 'nosniff')
        .send(body);
    },
  );

  app.delete(
    '/jobs/:id',
    { schema: { summary: 'Cancel a bulk job (chunks already committed are kept; a queued job\'s file is deleted)', params: IdParams, response: { 200: JobBody, 404: ErrorBody, 409: ErrorBody } } },
    async (req) => {
      return deps.uploads.cancel(principalOf(req), req.params.id);
    },
  );
};
