import postgres, { type Sql, type Options } from 'postgres';

export type { Sql };
export type TxSql = postgres.TransactionSql<Record<string, never>>;
/** A piece of SQL built with the tagged template, to nest in another. */
export type Fragment = postgres.PendingQuery<postgres.Row[]>;

interface PoolOptions {
  max?: number;
  /** false behind PgBouncer in transaction mode (named statements don't survive it). */
  prepare?: boolean;
  applicationName?: string;
  onnotice?: (n: postgres.Notice) => void;
  connectTimeoutSeconds?: number;
}

// DECIMAL comes back as a string from PostgreSQL; ratios and probabilities are DECIMAL(10,6),
// which a double represents exactly enough, so parse them once here rather than in every
// presenter. BIGINT (market_cap) stays a string only when it could lose precision.
const numericType = {
  to: 1700,
  from: [1700],
  serialize: (x: unknown) => String(x),
  parse: (x: string) => Number(x),
};
const bigintType = {
  to: 20,
  from: [20],
  serialize: (x: unknown) => String(x),
  parse: (x: string) => {
    const n = Number(x);
    return Number.isSafeInteger(n) ? n : x;
  },
};

// TIMESTAMP (without time zone, as in the spec) holds UTC wall-clock time (sessions run in
// UTC); parse it as UTC rather than as the Node process's local time.
const timestampType = {
  to: 1114,
  from: [1114],
  serialize: (x: unknown) => (x instanceof Date ? x.toISOString().replace('T', ' ').replace('Z', '') : String(x)),
  parse: (x: string) => new Date(x.replace(' ', 'T') + 'Z'),
};

export function createPool(url: string, opts: PoolOptions = {}): Sql {
  const options: Options<Record<string, postgres.PostgresType>> = {
    max: opts.max ?? 10,
    // Unset: postgres.js decides (true, unless the URL says ?prepare=false, as a URL pointing
    // at PgBouncer in transaction mode may).
    ...(opts.prepare === undefined ? {} : { prepare: opts.prepare }),
    idle_timeout: 60,
    connect_timeout: opts.connectTimeoutSeconds ?? 10,
    onnotice: opts.onnotice ?? (() => {}),
    // Timestamps are stored WITHOUT time zone as in the spec; pinning the session zone to UTC
    // makes CURRENT_TIMESTAMP and every read unambiguous whatever the server default.
    connection: { TimeZone: 'UTC', application_name: opts.applicationName ?? 'accunode' },
    types: { numeric: numericType, bigint: bigintType, timestamp: timestampType },
  };
  const sql = postgres(url, options);
  return sql as unknown as Sql;
}
