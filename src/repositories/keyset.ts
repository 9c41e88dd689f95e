// Keyset paging, shared by every list. A page is read by walking an index in sort order from
// where the previous page stopped and stopping after `limit` rows, so page 1 and page 10,000
// cost the same, whatever the table holds; rows inserted between two pages are never repeated
// or lost (the position is a value of the sort key plus the id, not a count of rows).
//
// The position travels to the client as an opaque cursor: the sort key's values, signed with a
// key the database holds (app_secret('cursor')) and bound to the list, its sort and its filters,
// so a cursor that was altered, or reused with other filters, is a 400 rather than a silently
// different page.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Fragment, Sql, TxSql } from '../db/pool.js';
import { DomainError } from '../domain/errors.js';

/** The sort key's column values at a row, as text (timestamps keep their microseconds). */
export type CursorValues = Array<string | number | null>;

interface CursorScope {
  /** Which list ("predictions.annual", "companies", ...). */
  list: string;
  /** The sort the cursor was made for. */
  sort: string;
  /** The filters of the request (their canonical form is bound into the cursor). */
  filters: Record<string, unknown>;
}

/** Pages deeper than this are read with the cursor; `offset` is refused past it. */
const MAX_OFFSET = 1000;
/** A total is counted exactly up to this many rows, then reported as "at least". */
export const TOTAL_CAP = 1000;

/** What a list request asks for: a sort, a page size and where to start. */
export interface ListRequest<S extends string> {
  sort: S;
  limit: number;
  cursor?: string;
  /** Shallow pages only (at most MAX_OFFSET rows deep); never together with cursor. */
  offset?: number;
}

export interface Total {
  total: number;
  /** 'eq': the exact number; 'gte': at least that many (counting stopped at TOTAL_CAP). */
  total_relation: 'eq' | 'gte';
}

export interface Page<T> extends Total {
  items: T[];
  next_cursor: string | null;
  limit: number;
}

function canonical(v: unknown): string {
  if (v === undefined) return 'null';
  if (v instanceof Date) return JSON.stringify(v.toISOString());
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const keys = Object.keys(v as object).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

const badCursor = (why: string) =>
  new DomainError('bad_request', `cursor: ${why}; start again from the first page (no cursor)`, [{ field: 'cursor', message: why }]);

/**
 * Signs and checks cursors. The key is read once from the database (app_secret('cursor')), so
 * every api process of a deployment accepts the others' cursors.
 */
export class Cursors {
  private key: Promise<Buffer> | null = null;

  constructor(private readonly loadKey: () => Promise<Buffer>) {}

  static fromDatabase(sql: Sql): Cursors {
    return new Cursors(async () => {
      const [r] = await sql<{ k: Buffer | null }[]>`select app_secret('cursor') as k`;
      if (!r?.k || r.k.length < 16) throw new Error("the database holds no 'cursor' key (migration 0040 not applied?)");
      return r.k;
    });
  }

  private getKey(): Promise<Buffer> {
    if (!this.key) {
      this.key = this.loadKey();
      this.key.catch(() => {
        this.key = null;
      });
    }
    return this.key;
  }

  private static bound(scope: CursorScope): string {
    return createHash('sha256').update(`${scope.list}\n${scope.sort}\n${canonical(scope.filters)}`).digest('base64url').slice(0, 16);
  }

  async encode(scope: CursorScope, values: CursorValues): Promise<string> {
    const body = b64(JSON.stringify({ b: Cursors.bound(scope), v: values }));
    const mac = createHmac('sha256', await this.getKey()).update(body).digest().subarray(0, 16);
    return `${body}.${b64(mac)}`;
  }

  /** The values of a cursor made for this list, sort and filters; a 400 for anything else. */
  async decode(scope: CursorScope, cursor: string): Promise<CursorValues> {
    const [body, sig, extra] = cursor.split('.');
    if (!body || !sig || extra !== undefined || cursor.length > 2048) throw badCursor('not a cursor this API issued');
    const expected = createHmac('sha256', await this.getKey()).update(body).digest().subarray(0, 16);
    const given = Buffer.from(sig, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw badCursor('not a cursor this API issued (or it was altered)');
    let parsed: { b?: unknown; v?: unknown };
    try {
      parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { b?: unknown; v?: unknown };
    } catch {
      throw badCursor('not a cursor this API issued');
    }
    if (parsed.b !== Cursors.bound(scope)) throw badCursor('it belongs to another list, sort or set of filters');
    if (!Array.isArray(parsed.v)) throw badCursor('not a cursor this API issued');
    return parsed.v as CursorValues;
  }
}

/** Types a sort key's values may have, to check a decoded cursor before it reaches SQL. */
export type KeyType = 'timestamp' | 'uuid' | 'int' | 'text' | 'phase';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TS_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/;

/** Checks each value against its type (a signed cursor is ours, but a key rotation or an old
 *  release's cursor must still fail cleanly). `null` is allowed where `nullable` says so. */
export function checkValues(values: CursorValues, types: readonly KeyType[], nullable: ReadonlySet<number> = new Set()): CursorValues {
  if (values.length !== types.length) throw badCursor('it does not match this sort');
  values.forEach((v, i) => {
    const t = types[i]!;
    if (v === null && nullable.has(i)) return;
    const ok =
      (t === 'timestamp' && typeof v === 'string' && TS_RE.test(v)) ||
      (t === 'uuid' && typeof v === 'string' && UUID_RE.test(v)) ||
      (t === 'int' && typeof v === 'number' && Number.isSafeInteger(v)) ||
      (t === 'phase' && (v === 0 || v === 1)) ||
      (t === 'text' && typeof v === 'string' && v.length <= 300);
    if (!ok) throw badCursor('it does not match this sort');
  });
  return values;
}

/** `offset` for shallow pages only; deeper ones are read with the cursor. */
export function checkOffset(offset: number | undefined, cursor: string | undefined): number {
  const o = offset ?? 0;
  if (o > 0 && cursor) throw new DomainError('bad_request', 'offset: give either cursor or offset, not both', [{ field: 'offset', message: 'not with cursor' }]);
  if (o > MAX_OFFSET) {
    throw new DomainError(
      'bad_request',
      `offset: pages past the first ${MAX_OFFSET} rows are read with the cursor: pass the previous page's next_cursor as ?cursor=`,
      [{ field: 'offset', message: `at most ${MAX_OFFSET}; use cursor` }],
    );
  }
  return o;
}

/** A capped count as a total: `n` counted up to TOTAL_CAP + 1 rows. */
export function cappedTotal(n: number): Total {
  return n > TOTAL_CAP ? { total: TOTAL_CAP, total_relation: 'gte' } : { total: n, total_relation: 'eq' };
}

/**
 * Turns rows fetched with `limit + offset + 1` into a page: skips `offset`, keeps `limit`, and
 * makes the next cursor from the last kept row when there is more.
 */
export async function pageOf<R, T>(
  cursors: Cursors,
  scope: CursorScope,
  rows: R[],
  opts: { limit: number; offset: number },
  keyOf: (row: R) => CursorValues,
  present: (row: R) => T,
  total: Total,
): Promise<Page<T>> {
  const kept = rows.slice(opts.offset, opts.offset + opts.limit);
  const more = rows.length > opts.offset + opts.limit;
  const next = more && kept.length > 0 ? await cursors.encode(scope, keyOf(kept[kept.length - 1]!)) : null;
  return { items: kept.map(present), next_cursor: next, limit: opts.limit, ...total };
}

// ---------------------------------------------------------------------------------------------
// SQL pieces shared by the lists.
// ---------------------------------------------------------------------------------------------

/** A sort key: its columns (the id last), their cursor types and the SQL casts of the values. */
export interface SortKey {
  cols: readonly string[];
  types: readonly KeyType[];
  casts: readonly string[];
}

/** `a.c1 dir, a.c2 dir, …` */
export function orderBy(tx: TxSql, alias: string, key: SortKey, desc: boolean) {
  const dir = desc ? tx`desc` : tx`asc`;
  return key.cols.map((c, i) => tx`${i > 0 ? tx`, ` : tx``}${tx(alias + '.' + c)} ${dir}`);
}

/**
 * `and (a.c1, a.c2) < (v1, v2)` (or `>` ascending): rows after the cursor. Written as a row
 * comparison of leakproof types so PostgreSQL uses it as an index condition under row-level
 * security (and the walk starts at the cursor instead of filtering up to it).
 */
export function afterCursor(tx: TxSql, alias: string, key: SortKey, desc: boolean, values: CursorValues | undefined) {
  if (!values) return tx``;
  const cols = key.cols.map((c, i) => tx`${i > 0 ? tx`, ` : tx``}${tx(alias + '.' + c)}`);
  const vals = key.cols.map((_, i) => tx`${i > 0 ? tx`, ` : tx``}${values[i] as string}::${tx.unsafe(key.casts[i]!)}`);
  return desc ? tx`and (${cols}) < (${vals})` : tx`and (${cols}) > (${vals})`;
}

/** The sort key's columns as `, a.c as k0, …` (timestamps as text: a JS Date drops microseconds). */
export function keyColumns(tx: TxSql, alias: string, key: SortKey) {
  return key.cols.map((c, i) => tx`, ${tx(alias + '.' + c)}${key.types[i] === 'timestamp' ? tx`::text` : tx``} as ${tx('k' + i)}`);
}

/** The k0, k1… columns of a row as cursor values. */
export function keyValues(row: Record<string, unknown>, key: SortKey): CursorValues {
  return key.cols.map((_, i) => row['k' + i] as string | number | null);
}

/** The scopes the caller reads (app_scopes(level)); null for a super admin: every scope. */
export async function scopesOf(tx: TxSql, level?: string): Promise<string[] | null> {
  const [r] = await tx<{ s: string[] | null }[]>`select app_scopes(${level ?? null}) as s`;
  return r!.s;
}

export const RISK_LEVELS = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;

/** Past this many walks a page uses one nested loop instead of one statement branch per walk. */
const MAX_BRANCHES = 48;

interface WalkOptions {
  /** The scopes to walk (scopesOf); null: every scope, on the global indexes. */
  scopes: string[] | null;
  /** Also split each scope's walk by risk level (tables whose keyset indexes lead with it). */
  risks?: readonly string[] | undefined;
  scopeColumn: string;
  riskColumn?: string;
  fetch: number;
  key: SortKey;
  desc: boolean;
  /** false: any order (for counting: an Append that stops after `fetch` rows). */
  ordered?: boolean;
}

/**
 * The rows of one page, merged from one walk per (scope, risk level) in sort order. Each walk is
 * `inner(condition)`, an index scan in key order (ORDER BY … LIMIT fetch); the union of walks
 * under ORDER BY … LIMIT is a Merge Append, which pulls rows from the walks lazily and stops
 * after `fetch` rows: the page reads about fetch + (number of walks) rows, whatever each scope
 * holds. With more walks than MAX_BRANCHES (a tenant admin of a very large tenant) the walks run
 * as a nested loop over unnest(): at most fetch rows each, still independent of the data size.
 * The result is ordered by `key` on alias `y`.
 */
export function walk(tx: TxSql, o: WalkOptions, inner: (condition: Fragment) => Fragment): Fragment {
  const risks: ReadonlyArray<string | null> = o.risks ?? [null];
  const scopes: ReadonlyArray<string | null> = o.scopes ?? [null];
  const cond = (scope: string | null, risk: string | null) => tx`
    ${scope === null ? tx`true` : tx`${tx(o.scopeColumn)} = ${scope}::uuid`}
    ${risk === null ? tx`` : tx`and ${tx(o.riskColumn ?? 'risk_level')} = ${risk}`}`;
  const units = scopes.flatMap((s) => risks.map((r) => [s, r] as const));
  if (units.length === 0) return tx`select y.* from (${inner(tx`false`)}) y`;
  if (units.length === 1) return tx`select y.* from (${inner(cond(units[0]![0], units[0]![1]))}) y`;
  const order = o.ordered === false ? tx`` : tx`order by ${orderBy(tx, 'y', o.key, o.desc)}`;
  if (units.length <= MAX_BRANCHES) {
    const branches = units.map(([s, r], i) => tx`${i > 0 ? tx` union all ` : tx``}(${inner(cond(s, r))})`);
    return tx`select y.* from (${branches}) y ${order} limit ${o.fetch}`;
  }
  const lateral = tx`
    ${tx(o.scopeColumn)} = u.scope_id
    ${o.risks ? tx`and ${tx(o.riskColumn ?? 'risk_level')} = u.risk` : tx``}`;
  return tx`
    select y.* from unnest(${units.map((u) => u[0])}::uuid[], ${units.map((u) => u[1])}::text[]) u(scope_id, risk)
    cross join lateral (${inner(lateral)}) y
    ${order} limit ${o.fetch}`;
}

/**
 * How the planner plans a page's statements, for the rest of the transaction.
 *
 * 'walk': every plan is an index walk in sort order, nested-loop index look-ups and a Merge
 *   Append, planned once per connection (a generic plan). The page statements are written for
 *   exactly that plan; the settings keep the planner from trading it, on generic estimates (a
 *   scope's row count is unknown in a generic plan), for a bitmap of every matching row plus a
 *   sort, or a hash join that scans a whole table: both measured at 10–12 ms where the walk
 *   takes 1 ms at a million rows.
 * 'custom': planned for the actual values each time, every plan allowed: for filters that
 *   select few rows through an index of their own (one company, a search's matches, a time
 *   window under another sort), where reading those rows and sorting them beats any walk.
 */
export type PlanProfile = 'walk' | 'custom';

export function usePlans(tx: TxSql, profile: PlanProfile) {
  // Every setting both ways: a transaction may switch profiles between its statements.
  // A walk reads O(limit) rows, so parallel workers only add their start-up: with generic plans
  // estimating each branch at a fraction of a large table, every branch got a Gather Merge of two
  // workers (15-20 ms each; 200 ms for a 12-branch page at 10M rows).
  const walk = profile === 'walk' ? 'off' : 'on';
  // A generic plan costs each branch as if it read a fraction of the whole table, so from about
  // 4M rows a page's estimate passes jit_above_cost and every page compiled ~150 expressions
  // first: 520 ms of JIT for a 0.3 ms walk at 10M rows. A walk never runs long enough to repay it.
  return tx.unsafe(
    `set local jit = ${profile === 'walk' ? 'off' : 'default'}; ` +
      `set local enable_seqscan = ${walk}; set local enable_bitmapscan = ${walk}; set local enable_sort = ${walk}; ` +
      `set local enable_hashjoin = ${walk}; set local enable_mergejoin = ${walk}; ` +
      `set local max_parallel_workers_per_gather = ${profile === 'walk' ? '0' : 'default'}; ` +
      `set local plan_cache_mode = ${profile === 'walk' ? 'force_generic_plan' : 'force_custom_plan'}`,
  );
}
