// Read replicas (DATABASE_READ_URLS): analytics and reports go to a healthy replica whose lag is
// under REPLICA_LAG_LIMIT_SECONDS, else to the primary. Health and lag are checked in the
// background (every intervalMs) so choosing a pool costs nothing on the request path; a replica
// that is down, lagging or slow to answer is skipped until a later check finds it well again.
import { createPool, type Sql, type TxSql } from './pool.js';
import { RequestRoleError, requestRoleProblem, roleFacts } from './request-role.js';
import { ConfigError } from '../config/index.js';

interface ReplicaState {
  /** host:port/db, no credentials. */
  name: string;
  healthy: boolean;
  lag_seconds: number | null;
  in_recovery: boolean | null;
  reason: string | null;
  checked_at: Date | null;
}

interface ReplicaRouterOptions {
  urls: readonly string[];
  lagLimitSeconds: number;
  /** Background check interval; 0 = only when check() is called. */
  intervalMs?: number;
  /** A check that takes longer than this marks the replica down. */
  checkTimeoutMs?: number;
  poolSize?: number;
  prepare?: boolean;
  applicationName?: string;
  createPool?: (url: string) => Sql;
  onChange?: (s: ReplicaState) => void;
  /**
   * Serving requests (the api): a replica is used only once it is found to log in as app_user
   * (src/db/request-role.ts). Off for the drill's scratch clusters, which are not tenants' data.
   */
  requireAppUser?: boolean;
}

// Lag: 0 when everything received has been replayed (an idle primary is not "lag"); otherwise
// the age of the last replayed transaction.
const LAG_SQL = `select pg_is_in_recovery() as recovery,
  case when not pg_is_in_recovery() then 0
       when pg_last_wal_receive_lsn() is not null and pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
       else coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()), -1) end::float8 as lag`;

function nameOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
}

export class ReplicaRouter {
  private readonly pools: Sql[];
  private readonly state: ReplicaState[];
  private timer: NodeJS.Timeout | null = null;
  private next = 0;
  private checking: Promise<ReplicaState[]> | null = null;
  /** Per replica: its login role was found fit to serve requests (checked once, see request-role.ts). */
  private readonly roleChecked: boolean[];

  constructor(private readonly o: ReplicaRouterOptions) {
    const make = o.createPool ?? ((url: string) => createPool(url, { max: o.poolSize ?? 5, prepare: o.prepare ?? true, applicationName: o.applicationName ?? 'accunode-read', connectTimeoutSeconds: 3 }));
    this.pools = o.urls.map((u) => make(u));
    this.state = o.urls.map((u) => ({ name: nameOf(u), healthy: false, lag_seconds: null, in_recovery: null, reason: 'not checked yet', checked_at: null }));
    this.roleChecked = o.urls.map(() => false);
  }

  /**
   * Refuses (ConfigError) when a reachable replica logs in as a role that row-level
   * security does not hold, e.g. analytics_user, whose policies read every tenant: analytics
   * served from it would mix tenants. A replica unreachable now is checked when it comes up and
   * stays unused until it passes.
   */
  async verifyRoles(): Promise<void> {
    await Promise.all(
      this.pools.map(async (pool, i) => {
        let facts;
        try {
          facts = await roleFacts(pool);
        } catch {
          return;
        }
        const problem = requestRoleProblem(facts);
        if (problem) throw new ConfigError('DATABASE_READ_URLS', `entry ${i + 1} (${this.state[i]!.name}) ${problem}; give it an app_user URL`);
        this.roleChecked[i] = true;
      }),
    );
  }

  /** Starts the background checks (the first one right away). */
  start(): this {
    if (this.timer || this.pools.length === 0) return this;
    void this.check();
    if (this.o.intervalMs) {
      this.timer = setInterval(() => void this.check(), this.o.intervalMs);
      this.timer.unref();
    }
    return this;
  }

  /** Checks every replica now. */
  check(): Promise<ReplicaState[]> {
    this.checking ??= Promise.all(this.pools.map((p, i) => this.checkOne(p, i))).finally(() => (this.checking = null));
    return this.checking;
  }

  private async checkOne(pool: Sql, i: number): Promise<ReplicaState> {
    const prev = this.state[i]!;
    let next: ReplicaState;
    try {
      let t: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`no answer within ${this.o.checkTimeoutMs ?? 2000} ms`)), this.o.checkTimeoutMs ?? 2000)));
      const query = async () => {
        if (this.o.requireAppUser && !this.roleChecked[i]) {
          const problem = requestRoleProblem(await roleFacts(pool));
          if (problem) throw new RequestRoleError(problem);
          this.roleChecked[i] = true;
        }
        return pool.unsafe(LAG_SQL);
      };
      const [r] = (await Promise.race([query(), timeout]).finally(() => clearTimeout(t))) as unknown as Array<{ recovery: boolean; lag: number }>;
      // -1: WAL waits to be replayed and no transaction has been replayed yet: lag unknown.
      const lag = Number(r!.lag);
      const ok = lag >= 0 && lag <= this.o.lagLimitSeconds;
      const reason = ok ? null : lag < 0 ? 'replaying, lag unknown' : `lag ${lag.toFixed(1)} s over the ${this.o.lagLimitSeconds} s limit`;
      next = { name: prev.name, healthy: ok, lag_seconds: lag < 0 ? null : Math.round(lag * 1000) / 1000, in_recovery: r!.recovery, reason, checked_at: new Date() };
    } catch (err) {
      const why = err instanceof RequestRoleError ? `refused: ${err.message}` : `down: ${(err as Error).message}`;
      next = { name: prev.name, healthy: false, lag_seconds: null, in_recovery: null, reason: why, checked_at: new Date() };
    }
    this.state[i] = next;
    if (next.healthy !== prev.healthy) this.o.onChange?.(next);
    return next;
  }

  /** A healthy replica's pool (round robin), or null: use the primary. */
  get(): Sql | null {
    const n = this.pools.length;
    for (let k = 0; k < n; k++) {
      const i = (this.next + k) % n;
      if (this.state[i]!.healthy) {
        this.next = (i + 1) % n;
        return this.pools[i]!;
      }
    }
    return null;
  }

  /** The application's readSql: a replica when one is healthy, else null (the primary). */
  readonly readSql = (): Sql | null => this.get();

  /** A query on the replica failed: skip it until the next check says otherwise. */
  markDown(pool: Sql, reason: string): void {
    const i = this.pools.indexOf(pool);
    if (i >= 0) this.state[i] = { ...this.state[i]!, healthy: false, reason: `down: ${reason}`, checked_at: new Date() };
  }

  states(): ReplicaState[] {
    return this.state.map((s) => ({ ...s }));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.pools.map((p) => p.end({ timeout: 2 }).catch(() => {})));
  }
}

/** The primary's current WAL position (what a replica must have replayed to be as fresh). */
export async function primaryLsn(sql: Sql): Promise<string> {
  const [r] = await sql<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`;
  return r!.lsn;
}

/** Whether the server `tx` runs on has replayed at least up to `lsn` (a primary always has). */
export async function caughtUpTo(tx: TxSql, lsn: string): Promise<boolean> {
  const [c] = await tx<{ ok: boolean }[]>`select (not pg_is_in_recovery()) or pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn as ok`;
  return c!.ok;
}
