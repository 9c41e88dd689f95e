import { Counter } from 'prom-client';
import type { Redis } from 'ioredis';
import type { Logger } from '../logging.js';
import { metrics } from '../metrics.js';

const cacheErrors = new Counter({
  name: 'accunode_cache_errors_total',
  help: 'cache operations skipped: Redis unavailable (op=read|write|invalidate) or a write refused for memory (op=write_refused)',
  labelNames: ['family', 'op'],
  registers: [metrics.registry],
});

type Family = 'prediction' | 'company' | 'user' | 'analytics';

/**
 * Cache-aside over the cache Redis, for rows that are already access-checked by the caller.
 *
 * - A miss loads once: concurrent misses on one key in this process share one load
 *   (single-flight), and across processes a short Redis lock makes the others wait for the
 *   first one's value instead of all reading the database.
 * - Redis trouble never fails a request: reads fall back to the loader, writes are skipped
 *   (including a noeviction Redis refusing for memory), each counted; the outage is logged once.
 * - An invalidation that could not reach Redis is kept and replayed when Redis is back, before
 *   the cache is read again, so nothing stale survives the outage.
 */
export class CacheAside {
  private readonly inflight = new Map<string, { who: string; promise: Promise<unknown> }>();
  private readonly pending = new Set<string>();
  private down = false;
  /** After a failure the cache is bypassed briefly, so an unresponsive Redis costs one timeout, not one per request. */
  private bypassUntil = 0;
  private replaying: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  readonly stats = { hits: 0, misses: 0, loads: 0 };

  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
  ) {
    redis.on('ready', () => {
      if (this.pending.size > 0) this.replaying = this.replay();
    });
  }

  private markDown(err: unknown, family: Family, op: string): void {
    cacheErrors.inc({ family, op });
    this.bypassUntil = Date.now() + 1000;
    if (!this.down) {
      this.down = true;
      this.log.warn({ err: (err as Error).message }, 'cache Redis unavailable: serving from PostgreSQL');
    }
  }

  private markUp(): void {
    if (this.down) {
      this.down = false;
      this.log.info('cache Redis is back');
    }
  }

  /** A Redis that froze and thawed never emits 'ready' again: retry owed invalidations on a timer too. */
  private scheduleReplay(): void {
    if (this.retryTimer) return;
    this.retryTimer = setInterval(() => {
      if (this.pending.size === 0) {
        clearInterval(this.retryTimer!);
        this.retryTimer = null;
        return;
      }
      if (this.redis.status === 'ready' && !this.replaying) this.replaying = this.replay();
    }, 1000);
    this.retryTimer.unref();
  }

  private async replay(): Promise<void> {
    const keys = [...this.pending];
    try {
      if (keys.length > 0) await this.redis.del(...keys);
      for (const k of keys) this.pending.delete(k);
      this.markUp();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'replaying cache invalidations failed; will retry');
    } finally {
      this.replaying = null;
    }
  }

  /**
   * Whether the cache may be used now: Redis is connected (a command to a reconnecting client
   * would wait out its retries) and no invalidation is still owed to it.
   */
  private async usable(family: Family): Promise<boolean> {
    if (Date.now() < this.bypassUntil) return false;
    if (this.redis.status !== 'ready') {
      this.markDown(new Error(`cache Redis is ${this.redis.status}`), family, 'read');
      return false;
    }
    if (this.replaying) await this.replaying;
    if (this.pending.size > 0) await this.replay();
    return this.pending.size === 0;
  }

  /**
   * `who` names whose identity the loader reads with (row-level security applies to it): a
   * caller joining someone else's in-flight load that found nothing loads for itself, since
   * what one user cannot see another may.
   */
  async get<T>(family: Family, key: string, ttlSeconds: number, load: () => Promise<T | null>, who = ''): Promise<T | null> {
    const usable = await this.usable(family);
    if (usable) {
      try {
        const raw = await this.redis.get(key);
        if (raw !== null) {
          this.markUp();
          this.stats.hits++;
          metrics.cacheHits.inc({ family });
          return JSON.parse(raw) as T;
        }
        this.markUp();
      } catch (err) {
        this.markDown(err, family, 'read');
        return this.loadShared(family, key, ttlSeconds, load, false, who);
      }
    }
    this.stats.misses++;
    metrics.cacheMisses.inc({ family });
    return this.loadShared(family, key, ttlSeconds, load, usable, who);
  }

  private async loadShared<T>(family: Family, key: string, ttlSeconds: number, load: () => Promise<T | null>, store: boolean, who: string): Promise<T | null> {
    const joined = this.inflight.get(key);
    if (joined && joined.who !== who) {
      const value = (await joined.promise) as T | null;
      if (value !== null) return value;
      this.stats.loads++;
      return load();
    }
    return this.loadOnce(family, key, ttlSeconds, load, store, who);
  }

  private loadOnce<T>(family: Family, key: string, ttlSeconds: number, load: () => Promise<T | null>, store: boolean, who: string): Promise<T | null> {
    const existing = this.inflight.get(key);
    if (existing) return existing.promise as Promise<T | null>;
    const p = (async () => {
      const lockKey = `${key}:lock`;
      let locked = false;
      if (store) {
        try {
          locked = (await this.redis.set(lockKey, '1', 'PX', 5000, 'NX')) === 'OK';
          if (!locked) {
            // Another process is loading this key: wait briefly for its value.
            for (let i = 0; i < 20; i++) {
              await new Promise((r) => setTimeout(r, 25));
              const raw = await this.redis.get(key);
              if (raw !== null) return JSON.parse(raw) as T;
            }
          }
        } catch (err) {
          // A full noeviction Redis refuses the lock as it would the value: skip caching.
          if (/OOM/.test((err as Error).message)) cacheErrors.inc({ family, op: 'write_refused' });
          else this.markDown(err, family, 'read');
          store = false;
        }
      }
      this.stats.loads++;
      const value = await load();
      if (store && value !== null) {
        try {
          await this.redis.set(key, JSON.stringify(value), 'EX', ttlSeconds);
        } catch (err) {
          const oom = /OOM/.test((err as Error).message);
          if (oom) cacheErrors.inc({ family, op: 'write_refused' });
          else this.markDown(err, family, 'write');
        }
      }
      if (locked) await this.redis.del(lockKey).catch(() => {});
      return value;
    })().finally(() => this.inflight.delete(key));
    this.inflight.set(key, { who, promise: p });
    return p;
  }

  /** Drops keys after a write; never throws (an unreachable Redis is remembered and replayed). */
  async invalidate(family: Family, ...keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      if (this.redis.status !== 'ready') throw new Error(`redis is ${this.redis.status}`);
      await this.redis.del(...keys);
    } catch (err) {
      for (const k of keys) this.pending.add(k);
      this.markDown(err, family, 'invalidate');
      this.scheduleReplay();
    }
  }
}
