/**
 * Creating a bulk job from a file already on disk (the HTTP route streams the upload there; the
 * CLI points at the user's file): scope check, content sniffing, job row (as the uploader).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Sql } from '../../db/pool.js';
import { DomainError } from '../../domain/errors.js';
import type { AccessLevel } from '../../domain/access.js';
import type { Principal } from '../../domain/principal.js';
import type { ModelKind } from '../../risk/index.js';
import { resolveScope } from '../prediction-compute.js';
import { insertBulkJob, type BulkJobRow } from '../../repositories/bulk-jobs.js';
import { sniffFormat } from './readers.js';
import { BulkFileError } from './values.js';

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface CreateBulkJobInput {
  kind: ModelKind;
  accessLevel?: AccessLevel | null;
  filePath: string;
  fileName?: string | null;
}

/**
 * Validates who may upload at which level and that the file is CSV or XLSX (by content), then
 * records the job as 'queued'. Throws DomainError('validation_failed') with the field named.
 */
export async function createBulkJob(sql: Sql, principal: Principal, input: CreateBulkJobInput): Promise<BulkJobRow> {
  if (input.kind !== 'annual' && input.kind !== 'quarterly')
    throw new DomainError('validation_failed', 'type: must be "annual" or "quarterly"', [{ field: 'type', message: 'must be "annual" or "quarterly"' }]);
  const scope = resolveScope(principal, input.accessLevel ?? null);
  if (!scope.ok) throw new DomainError('validation_failed', `${scope.errors[0]!.field}: ${scope.errors[0]!.message}`, scope.errors);
  let format;
  try {
    format = await sniffFormat(input.filePath);
  } catch (err) {
    if (err instanceof BulkFileError) throw new DomainError('validation_failed', `file: ${err.message}`, [{ field: 'file', message: err.message, code: err.code }]);
    throw err;
  }
  const size = (await stat(input.filePath)).size;
  return insertBulkJob(sql, {
    userId: principal.userId,
    tenantId: principal.tenantId,
    kind: input.kind,
    accessLevel: scope.value.access_level,
    organizationId: scope.value.organization_id ?? principal.organizationId,
    fileName: input.fileName ?? path.basename(input.filePath),
    filePath: path.resolve(input.filePath),
    fileSize: size,
    fileSha256: await sha256File(input.filePath),
    format,
  });
}
