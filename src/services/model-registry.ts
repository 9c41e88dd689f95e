/**
 * The model registry (issue 15): versioned artifacts in the database, one champion per kind,
 * every registration, promotion and retirement recorded with who and why. Operator commands run
 * it as the owner. Promotion is one transaction: the previous champion becomes a candidate again
 * (it can be promoted back), the new one the champion, and the event names both.
 */
import { createHash } from 'node:crypto';
import type { Sql, TxSql } from '../db/pool.js';
import * as repo from '../repositories/model-versions.js';
import type { ModelVersionRow } from '../repositories/model-versions.js';
import { validateArtifact, type ModelArtifact, type ModelKind } from '../risk/index.js';

export type { ModelVersionRow } from '../repositories/model-versions.js';

export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

/** Stable JSON of an artifact (what the checksum is over). */
const canonical = (a: ModelArtifact): string => JSON.stringify(a);

export async function registerModel(sql: Sql, kind: ModelKind, json: unknown, actor: string): Promise<ModelVersionRow> {
  const art = validateArtifact(kind, json);
  const sha = createHash('sha256').update(canonical(art)).digest('hex');
  return sql.begin(async (tx) => {
    const existing = await repo.versionByName(tx, kind, art.name, art.version);
    if (existing) {
      if (existing.sha256 === sha) return existing;
      throw new RegistryError(`${kind} ${art.name} ${art.version} is already registered with different contents; give the new model its own version`);
    }
    const row = await repo.insertVersion(tx, { kind, artifact: art, sha256: sha, actor });
    await repo.insertEvent(tx, { versionId: row.id, action: 'register', actor });
    return row;
  }) as Promise<ModelVersionRow>;
}

export function listModels(sql: Sql, kind?: ModelKind): Promise<ModelVersionRow[]> {
  return repo.listVersions(sql, kind);
}

export async function findVersion(sql: Sql | TxSql, kind: ModelKind, version: string, name?: string): Promise<ModelVersionRow> {
  const rows = await repo.versionsNamed(sql, kind, version, name);
  if (rows.length === 0) throw new RegistryError(`no ${kind} model version ${version}${name ? ` named ${name}` : ''} is registered (see accunode model list)`);
  if (rows.length > 1) throw new RegistryError(`several ${kind} models have version ${version}; say which with --name`);
  return rows[0]!;
}

export async function showModel(sql: Sql, kind: ModelKind, version: string, name?: string) {
  const row = await findVersion(sql, kind, version, name);
  const artifact = (await repo.artifactById(sql, row.id)) as ModelArtifact;
  return { ...row, artifact, events: await repo.eventsOf(sql, row.id) };
}

export async function promoteModel(sql: Sql, kind: ModelKind, version: string, actor: string, opts: { name?: string; reason?: string } = {}) {
  return sql.begin(async (tx) => {
    const row = await findVersion(tx, kind, version, opts.name);
    if (row.status === 'retired') throw new RegistryError(`${kind} ${row.name} ${row.version} is retired; register it again under a new version to use it`);
    if (row.status === 'champion') return { champion: row, previous: null };
    const prev = await repo.lockChampion(tx, kind);
    if (prev) await repo.setStatus(tx, prev.id, 'candidate');
    const now = await repo.setStatus(tx, row.id, 'champion');
    await repo.insertEvent(tx, { versionId: row.id, action: 'promote', actor, reason: opts.reason ?? null, previousChampionId: prev?.id ?? null });
    return { champion: now, previous: prev ?? null };
  }) as Promise<{ champion: ModelVersionRow; previous: ModelVersionRow | null }>;
}

export async function retireModel(sql: Sql, kind: ModelKind, version: string, actor: string, opts: { name?: string; reason?: string } = {}) {
  return sql.begin(async (tx) => {
    const row = await findVersion(tx, kind, version, opts.name);
    if (row.status === 'champion') throw new RegistryError(`${kind} ${row.name} ${row.version} is the champion; promote another version first`);
    if (row.status === 'retired') return row;
    const r = await repo.setStatus(tx, row.id, 'retired');
    await repo.insertEvent(tx, { versionId: row.id, action: 'retire', actor, reason: opts.reason ?? null });
    return r;
  }) as Promise<ModelVersionRow>;
}

/** The champion artifact of a kind, or null when the registry has none (then the shipped file applies). */
export async function championArtifact(sql: Sql, kind: ModelKind): Promise<ModelArtifact | null> {
  const a = await repo.championArtifactRow(sql, kind);
  return a === null ? null : validateArtifact(kind, a);
}

/** The champion of a kind (its registry row), or null. */
export function championOf(sql: Sql, kind: ModelKind): Promise<ModelVersionRow | null> {
  return repo.championRow(sql, kind);
}

/** The artifact of a registered version (validated). */
export async function artifactOf(sql: Sql, kind: ModelKind, id: number): Promise<ModelArtifact> {
  const a = await repo.artifactById(sql, id, kind);
  if (a === null) throw new RegistryError(`no ${kind} model version with id ${id} is registered`);
  return validateArtifact(kind, a);
}
