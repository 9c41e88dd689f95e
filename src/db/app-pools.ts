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
import type { Redis } from 'ioredis';
import type { Sql } from './pool.js';

export const PRIMARY_CHANNEL = 'accunode:dr:primary';

export interface PrimaryChange {
  from: string;
  to: string;
  at: string;
  event_id?: number | null;
}

export function endpoint(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '5432'}`;
}

/** url with its host:port replaced by `to` (host:port). */
export function repoint(url: string, to: string): string {
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
  async follow(subscriber: Redis, reader: Redis, channel = PRIMARY_CHANNEL): Promise<() => Promise<void>> {
    const onMessage = (ch: string, msg: string) => {
      if (ch !== channel) return;
      try {
        this.apply(JSON.parse(msg) as PrimaryChange);
      } catch (err) {
        this.log?.warn({ err: (err as Error).message }, 'bad primary-change message ignored');
      }
    };
    subscriber.on('message', onMessage);
    await subscriber.subscribe(channel);
    try {
      const chain = await reader.lrange(`${channel}:history`, 0, -1);
      for (const raw of chain) this.apply(JSON.parse(raw) as PrimaryChange);
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

/** Publishes a primary change: appended to the history list (for late starters) and announced. */
export async function publishPrimary(redis: Redis, change: PrimaryChange, channel = PRIMARY_CHANNEL): Promise<number> {
  await redis.rpush(`${channel}:history`, JSON.stringify(change));
  await redis.ltrim(`${channel}:history`, -20, -1);
  return redis.publish(channel, JSON.stringify(change));
}
