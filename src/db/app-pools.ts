// Pool switching after a failover, without restarting the process.
//
// AppPools holds the application's current pool; `sql` is a stand-in (a Proxy) that forwards
// every call — tagged queries, begin, unsafe, listen... — to whichever pool is current, so the
// services built once at start-up follow a switch. `accunode dr failover` publishes the new
// primary on Redis (channel + key PRIMARY_CHANNEL, message {from, to} as host:port); a process
// whose pool points at `from` re-points it at `to` (same user, password, database and options)
// and closes the old pool after in-flight queries finish. The key lets a process that starts
// later (or missed the message) follow the same chain. Only host and port travel: credentials
// never leave the process.
//
// Redis is not trusted to name the primary: with a PrimaryTrust, follow() applies only changes
// signed with the database's 'dr' key (app_secret('dr'), migration 0042), newer than the last
// one applied, and to one of the hosts this process was configured with.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Sql } from './pool.js';

export const PRIMARY_CHANNEL = 'accunode:dr:primary';

export interface PrimaryChange {
  from: string;
  to: string;
  at: string;
  event_id?: number | null;
}

interface PrimaryTrust {
  /** The signing key (app_secret('dr')); read at follow() time, while the database is up. */
  key: () => Promise<Buffer>;
  /** host:port endpoints a change may point this process at (its primary and its replicas). */
  allowed: readonly string[];
}

export function drKeyFromDatabase(sql: Sql): () => Promise<Buffer> {
  return async () => {
    const [r] = await sql<{ k: Buffer | null }[]>`select app_secret('dr') as k`;
    if (!r?.k || r.k.length < 16) throw new Error("the database holds no 'dr' key (migration 0042 not applied?)");
    return r.k;
  };
}

function changeMac(key: Buffer, channel: string, body: string): Buffer {
  return createHmac('sha256', key).update(channel).update('\n').update(body).digest();
}

/** A published change: its JSON with `sig`, an HMAC over the channel and the change. */
function signChange(change: PrimaryChange, channel: string, key: Buffer): string {
  const { sig: _ignored, ...body } = change as PrimaryChange & { sig?: unknown };
  return JSON.stringify({ ...body, sig: changeMac(key, channel, JSON.stringify(body)).toString('base64url') });
}

/** The change a message carries when its signature is good; null otherwise. */
function verifyChange(raw: string, channel: string, key: Buffer): PrimaryChange | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!parsed || typeof parsed !== 'object' || typeof (parsed as { sig?: unknown }).sig !== 'string') return null;
  const { sig, ...body } = parsed as PrimaryChange & { sig: string };
  if (typeof body.from !== 'string' || typeof body.to !== 'string' || typeof body.at !== 'string') return null;
  const want = changeMac(key, channel, JSON.stringify(body));
  const got = Buffer.from(sig, 'base64url');
  return got.length === want.length && timingSafeEqual(got, want) ? body : null;
}

export function endpoint(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '5432'}`;
}

/** url with its host:port replaced by `to` (host:port). */
function repoint(url: string, to: string): string {
  const u = new URL(url);
  const i = to.lastIndexOf(':');
  u.hostname = to.slice(0, i);
  u.port = to.slice(i + 1);
  return u.toString();
}

export class AppPools {
  private current: Sql;
  private currentUrl: string;
  readonly sql: Sql;
  readonly switches: Array<PrimaryChange & { switched_at: string }> = [];
  private closers = new Set<Promise<unknown>>();
  private readonly switchListeners: Array<() => void> = [];
  /** `at` of the newest signed change seen: an older one replayed is not applied. */
  private lastAt = '';

  constructor(
    url: string,
    private readonly make: (url: string) => Sql,
    private readonly log?: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void },
    private readonly graceSeconds = 5,
  ) {
    this.currentUrl = url;
    this.current = make(url);
    const current = () => this.current;
    this.sql = new Proxy(function () {} as unknown as Sql, {
      apply(_t, _this, args: unknown[]) {
        return (current() as unknown as (...a: unknown[]) => unknown)(...args);
      },
      get(_t, prop) {
        const pool = current();
        const v = (pool as unknown as Record<PropertyKey, unknown>)[prop];
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(pool) : v;
      },
    });
  }

  /** The pool in use now. */
  get pool(): Sql {
    return this.current;
  }

  get endpoint(): string {
    return endpoint(this.currentUrl);
  }

  /** Points the application at a new server; the old pool drains for graceSeconds. */
  switchTo(url: string, change?: PrimaryChange): void {
    const old = this.current;
    const from = this.endpoint;
    this.current = this.make(url);
    this.currentUrl = url;
    this.switches.push({ from, to: endpoint(url), at: change?.at ?? new Date().toISOString(), event_id: change?.event_id ?? null, switched_at: new Date().toISOString() });
    if (change?.at && change.at > this.lastAt) this.lastAt = change.at;
    this.log?.info({ from, to: endpoint(url) }, 'database primary changed: pool switched');
    for (const fn of this.switchListeners) fn();
    const p = old.end({ timeout: this.graceSeconds }).catch(() => {});
    this.closers.add(p);
    void p.finally(() => this.closers.delete(p));
  }

  /** Called after each switch: for what holds a connection of its own (LISTEN) and must re-open it. */
  onSwitch(fn: () => void): void {
    this.switchListeners.push(fn);
  }

  /** Applies a published change when it concerns this pool's server (following a chain of them). */
  apply(change: PrimaryChange): boolean {
    if (change.from !== this.endpoint || change.to === this.endpoint) return false;
    this.switchTo(repoint(this.currentUrl, change.to), change);
    return true;
  }

  /**
   * Follows PRIMARY_CHANNEL: reads the key once (a failover that happened before this process
   * started) and subscribes. `subscriber` must be a dedicated connection (subscribe mode).
   */
  async follow(subscriber: Redis, reader: Redis, channel = PRIMARY_CHANNEL, trust?: PrimaryTrust): Promise<() => Promise<void>> {
    // Loaded now: when a change arrives the old primary (which holds the key) is likely down.
    const key = trust ? trust.key() : null;
    key?.catch((err: Error) => this.log?.warn({ err: err.message }, 'no primary-change signing key: failover announcements will be ignored'));
    const allowed = new Set(trust?.allowed ?? []);
    // One at a time, in arrival order (verification awaits the key).
    let queue: Promise<void> = Promise.resolve();
    const handle = async (raw: string, source: string) => {
      let change: PrimaryChange | null;
      if (!key) {
        change = JSON.parse(raw) as PrimaryChange;
      } else {
        change = verifyChange(raw, channel, await key);
        if (!change) return this.log?.warn({ source }, 'primary change refused: not signed with this deployment\'s key');
        if (!allowed.has(change.to)) return this.log?.warn({ source, to: change.to }, 'primary change refused: the new primary is not one of the configured database hosts');
        if (this.lastAt && change.at <= this.lastAt) return this.log?.warn({ source, at: change.at }, 'primary change refused: not newer than the last one seen (a replay?)');
        // Seen counts, applied or not: a chain's later links are newer than every earlier one.
        this.lastAt = change.at;
      }
      this.apply(change);
    };
    const enqueue = (raw: string, source: string) => {
      queue = queue.then(() => handle(raw, source)).catch((err: Error) => this.log?.warn({ err: err.message }, 'bad primary-change message ignored'));
      return queue;
    };
    const onMessage = (ch: string, msg: string) => {
      if (ch === channel) void enqueue(msg, 'channel');
    };
    subscriber.on('message', onMessage);
    await subscriber.subscribe(channel);
    try {
      const chain = await reader.lrange(`${channel}:history`, 0, -1);
      for (const raw of chain) await enqueue(raw, 'history');
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, 'could not read the primary-change history');
    }
    return async () => {
      subscriber.off('message', onMessage);
      await subscriber.unsubscribe(channel).catch(() => {});
    };
  }

  async end(opts: { timeout?: number } = {}): Promise<void> {
    await Promise.all([this.current.end(opts), ...this.closers]);
  }
}

/**
 * Publishes a primary change: appended to the history list (for late starters) and announced;
 * signed when a key is given (processes following with a PrimaryTrust ignore unsigned ones).
 */
export async function publishPrimary(redis: Redis, change: PrimaryChange, channel = PRIMARY_CHANNEL, key?: Buffer | null): Promise<number> {
  const msg = key ? signChange(change, channel, key) : JSON.stringify(change);
  await redis.rpush(`${channel}:history`, msg);
  await redis.ltrim(`${channel}:history`, -20, -1);
  return redis.publish(channel, msg);
}
