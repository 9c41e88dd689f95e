/**
 * The model registry (issue 15): versioned artifacts in the database, one champion per kind,
 * every registration, promotion and retirement recorded with who and why. Operator commands run
 * it as the owner. Promotion is one transaction: the previous champion becomes a candidate again
 * (it can be promoted back), the new one the champion, and the event names both.
 */
import { createHash } from 'node:crypto';
import type { Sql } from '../db/pool.js';
import { validateArtifact, type ModelArtifact, type ModelKind } from '../risk/index.js';

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

export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

const COLS = 'id::int, kind, name, version, status, sha256, reference_model, registered_at, registered_by, promoted_at, retired_at';

/** Stable JSON of an artifact (what the checksum is over). */
const canonical = (a: ModelArtifact): string => JSON.stringify(a);

export async function registerModel(sql: Sql, kind: ModelKind, json: unknown, actor: string): Promise<ModelVersionRow> {
  const art = validateArtifact(kind, json);
  const sha = createHash('sha256').update(canonical(art)).digest('hex');
  return sql.begin(async (tx) => {
    const [existing] = await tx.unsafe<ModelVersionRow[]>(`select ${COLS} from model_versions where kind = $1 and name = $2 and version = $3`, [kind, art.name, art.version]);
    if (existing) {
      if (existing.sha256 === sha) return existing;
      throw new RegistryError(`${kind} ${art.name} ${art.version} is already registered with different contents; give the new model its own version`);
    }
    const [row] = await tx.unsafe<ModelVersionRow[]>(
      `insert into model_versions (kind, name, version, artifact, sha256, reference_model, registered_by)
       values ($1, $2, $3, $4::jsonb, $5, $6, $7) returning ${COLS}`,
      [kind, art.name, art.version, art as never, sha, art.reference_model, actor],
    );
    await tx`insert into model_registry_events (model_version_id, action, actor) values (${row!.id}, 'register', ${actor})`;
    return row!;
  }) as Promise<ModelVersionRow>;
}

export async function listModels(sql: Sql, kind?: ModelKind): Promise<ModelVersionRow[]> {
  return sql.unsafe<ModelVersionRow[]>(
    `select ${COLS} from model_versions where ($1::text is null or kind = $1) order by kind, registered_at, id`,
    [kind ?? null],
  );
}

export async function findVersion(sql: Sql, kind: ModelKind, version: string, name?: string): Promise<ModelVersionRow> {
  const rows = await sql.unsafe<ModelVersionRow[]>(
    `select ${COLS} from model_versions where kind = $1 and version = $2 and ($3::text is null or name = $3)`,
    [kind, version, name ?? null],
  );
  if (rows.length === 0) throw new RegistryError(`no ${kind} model version ${version}${name ? ` named ${name}` : ''} is registered (see accunode model list)`);
  if (rows.length > 1) throw new RegistryError(`several ${kind} models have version ${version}; say which with --name`);
  return rows[0]!;
}

export async function showModel(sql: Sql, kind: ModelKind, version: string, name?: string) {
  const row = await findVersion(sql, kind, version, name);
  const [a] = await sql<{ artifact: ModelArtifact }[]>`select artifact from model_versions where id = ${row.id}`;
  const events = await sql<Array<{ action: string; actor: string; reason: string | null; at: Date; previous_champion_id: number | null }>>`
    select action, actor, reason, at, previous_champion_id::int from model_registry_events where model_version_id = ${row.id} order by at, id`;
  return { ...row, artifact: a!.artifact, events };
}

export async function promoteModel(sql: Sql, kind: ModelKind, version: string, actor: string, opts: { name?: string; reason?: string } = {}) {
  return sql.begin(async (tx) => {
    const t = tx as unknown as Sql;
    const row = await findVersion(t, kind, version, opts.name);
    if (row.status === 'retired') throw new RegistryError(`${kind} ${row.name} ${row.version} is retired; register it again under a new version to use it`);
    if (row.status === 'champion') return { champion: row, previous: null };
    // Lock the kind's champion row so two promotions cannot both win.
    const [prev] = await tx.unsafe<ModelVersionRow[]>(`select ${COLS} from model_versions where kind = $1 and status = 'champion' for update`, [kind]);
    if (prev) await tx`update model_versions set status = 'candidate' where id = ${prev.id}`;
    const [now] = await tx.unsafe<ModelVersionRow[]>(`update model_versions set status = 'champion', promoted_at = now() where id = $1 returning ${COLS}`, [row.id]);
    await tx`insert into model_registry_events (model_version_id, action, actor, reason, previous_champion_id) values (${row.id}, 'promote', ${actor}, ${opts.reason ?? null}, ${prev?.id ?? null})`;
    return { champion: now!, previous: prev ?? null };
  }) as Promise<{ champion: ModelVersionRow; previous: ModelVersionRow | null }>;
}

export async function retireModel(sql: Sql, kind: ModelKind, version: string, actor: string, opts: { name?: string; reason?: string } = {}) {
  return sql.begin(async (tx) => {
    const t = tx as unknown as Sql;
    const row = await findVersion(t, kind, version, opts.name);
    if (row.status === 'champion') throw new RegistryError(`${kind} ${row.name} ${row.version} is the champion; promote another version first`);
    if (row.status === 'retired') return row;
    const [r] = await tx.unsafe<ModelVersionRow[]>(`update model_versions set status = 'retired', retired_at = now() where id = $1 returning ${COLS}`, [row.id]);
    await tx`insert into model_registry_events (model_version_id, action, actor, reason) values (${row.id}, 'retire', ${actor}, ${opts.reason ?? null})`;
    return r!;
  }) as Promise<ModelVersionRow>;
}

/** The champion artifact of a kind, or null when the registry has none (then the shipped file applies). */
export async function championArtifact(sql: Sql, kind: ModelKind): Promise<ModelArtifact | null> {
  const [r] = await sql<{ artifact: unknown }[]>`select artifact from model_versions where kind = ${kind} and status = 'champion'`;
  return r ? validateArtifact(kind, r.artifact) : null;
}

/** The champion of a kind (its registry row), or null. */
export async function championOf(sql: Sql, kind: ModelKind): Promise<ModelVersionRow | null> {
  const [r] = await sql.unsafe<ModelVersionRow[]>(`select ${COLS} from model_versions where kind = $1 and status = 'champion'`, [kind]);
  return r ?? null;
}

/** The artifact of a registered version (validated). */
export async function artifactOf(sql: Sql, kind: ModelKind, id: number): Promise<ModelArtifact> {
  const [r] = await sql<{ artifact: unknown }[]>`select artifact from model_versions where id = ${id} and kind = ${kind}`;
  if (!r) throw new RegistryError(`no ${kind} model version with id ${id} is registered`);
  return validateArtifact(kind, r.artifact);
}
