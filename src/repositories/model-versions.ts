// The model registry's tables (migration 0051): versions with their artifacts, and the history
// of registrations, promotions and retirements. Written as the owner (operators' commands);
// app_user reads model_versions only (each process loads the champions).
import type { Sql, TxSql } from '../db/pool.js';
import type { ModelArtifact, ModelKind } from '../risk/index.js';

export type ModelStatus = 'candidate' | 'champion' | 'retired';

export interface ModelVersionRow {
  id: number;
  kind: ModelKind;
  name: string;
  version: string;
  status: ModelStatus;
  sha256: string;
  reference_model: boolean;
  registered_at: Date;
  registered_by: string;
  promoted_at: Date | null;
  retired_at: Date | null;
}

export interface RegistryEvent {
  action: string;
  actor: string;
  reason: string | null;
  at: Date;
  previous_champion_id: number | null;
}

const COLS = 'id::int, kind, name, version, status, sha256, reference_model, registered_at, registered_by, promoted_at, retired_at';

export async function versionByName(sql: Sql | TxSql, kind: ModelKind, name: string, version: string): Promise<ModelVersionRow | null> {
  const [r] = await sql.unsafe<ModelVersionRow[]>(`select ${COLS} from model_versions where kind = $1 and name = $2 and version = $3`, [kind, name, version]);
  return r ?? null;
}

export async function insertVersion(tx: TxSql, v: { kind: ModelKind; artifact: ModelArtifact; sha256: string; actor: string }): Promise<ModelVersionRow> {
  const [row] = await tx.unsafe<ModelVersionRow[]>(
    `insert into model_versions (kind, name, version, artifact, sha256, reference_model, registered_by)
     values ($1, $2, $3, $4::jsonb, $5, $6, $7) returning ${COLS}`,
    [v.kind, v.artifact.name, v.artifact.version, v.artifact as never, v.sha256, v.artifact.reference_model, v.actor],
  );
  return row!;
}

export async function insertEvent(tx: TxSql, e: { versionId: number; action: 'register' | 'promote' | 'retire'; actor: string; reason?: string | null; previousChampionId?: number | null }): Promise<void> {
  await tx`insert into model_registry_events (model_version_id, action, actor, reason, previous_champion_id)
           values (${e.versionId}, ${e.action}, ${e.actor}, ${e.reason ?? null}, ${e.previousChampionId ?? null})`;
}

export async function listVersions(sql: Sql, kind?: ModelKind): Promise<ModelVersionRow[]> {
  return sql.unsafe<ModelVersionRow[]>(`select ${COLS} from model_versions where ($1::text is null or kind = $1) order by kind, registered_at, id`, [kind ?? null]);
}

/** Versions of a kind with this version string (and name, when given): several when names differ. */
export async function versionsNamed(sql: Sql | TxSql, kind: ModelKind, version: string, name?: string): Promise<ModelVersionRow[]> {
  return sql.unsafe<ModelVersionRow[]>(`select ${COLS} from model_versions where kind = $1 and version = $2 and ($3::text is null or name = $3)`, [kind, version, name ?? null]);
}

export async function artifactById(sql: Sql, id: number, kind?: ModelKind): Promise<unknown | null> {
  const [r] = await sql<{ artifact: unknown }[]>`select artifact from model_versions where id = ${id} and (${kind ?? null}::text is null or kind = ${kind ?? null})`;
  return r ? r.artifact : null;
}

export async function eventsOf(sql: Sql, versionId: number): Promise<RegistryEvent[]> {
  return sql<RegistryEvent[]>`
    select action, actor, reason, at, previous_champion_id::int from model_registry_events where model_version_id = ${versionId} order by at, id`;
}

/** The kind's champion, locked so that two promotions cannot both win. */
export async function lockChampion(tx: TxSql, kind: ModelKind): Promise<ModelVersionRow | null> {
  const [r] = await tx.unsafe<ModelVersionRow[]>(`select ${COLS} from model_versions where kind = $1 and status = 'champion' for update`, [kind]);
  return r ?? null;
}

export async function setStatus(tx: TxSql, id: number, status: ModelStatus): Promise<ModelVersionRow> {
  const stamp = status === 'champion' ? ', promoted_at = now()' : status === 'retired' ? ', retired_at = now()' : '';
  const [r] = await tx.unsafe<ModelVersionRow[]>(`update model_versions set status = $2${stamp} where id = $1 returning ${COLS}`, [id, status]);
  return r!;
}

export async function championRow(sql: Sql, kind: ModelKind): Promise<ModelVersionRow | null> {
  const [r] = await sql.unsafe<ModelVersionRow[]>(`select ${COLS} from model_versions where kind = $1 and status = 'champion'`, [kind]);
  return r ?? null;
}

export async function championArtifactRow(sql: Sql, kind: ModelKind): Promise<unknown | null> {
  const [r] = await sql<{ artifact: unknown }[]>`select artifact from model_versions where kind = ${kind} and status = 'champion'`;
  return r ? r.artifact : null;
}

/** Each kind's champion id (what a serving process compares with what it serves). */
export async function championIds(sql: Sql): Promise<Array<{ kind: ModelKind; id: number }>> {
  return sql<Array<{ kind: ModelKind; id: number }>>`select kind, id::int from model_versions where status = 'champion'`;
}
