import type { Redis } from 'ioredis';
import type { Role } from '../domain/access.js';
import { keys } from './keys.js';

/** What `session:{sha256(token)}` holds: enough to authorise a request without the database. */
export interface CachedSession {
  sid: string;
  uid: string;
  role: Role;
  tenant: string | null;
  org: string | null;
  /** Absolute expiry (ms since epoch): sliding renewal never passes it. */
  exp: number;
  /** When the entry (and user_sessions.last_activity) was last written (ms). */
  w: number;
}

/**
 * Sessions in Redis, with a small process-local copy (a few seconds) in front: a busy client's
 * requests then cost no Redis round trip for the session at all. The local copy is dropped with
 * the Redis one (logout, revocation, role changes) and by the revocation NOTIFY every api process
 * listens to, so it never outlives a revocation that this process hears about; without the
 * notification it lives at most LOCAL_TTL_MS.
 */
export class SessionStore {
  private readonly local = new Map<string, { s: CachedSession; until: number }>();
  private static readonly LOCAL_MAX = 10_000;

  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
    private readonly localTtlMs = 5_000,
  ) {}

  async get(tokenHash: string, now = Date.now()): Promise<CachedSession | null> {
    const hit = this.local.get(tokenHash);
    if (hit && hit.until > now) return hit.s;
    if (hit) this.local.delete(tokenHash);
    const raw = await this.redis.get(keys.session(tokenHash));
    if (!raw) return null;
    try {
      const s = JSON.parse(raw) as CachedSession;
      this.remember(tokenHash, s, now);
      return s;
    } catch {
      return null;
    }
  }

  private remember(tokenHash: string, s: CachedSession, now: number): void {
    if (this.localTtlMs <= 0) return;
    if (this.local.size >= SessionStore.LOCAL_MAX) {
      // Oldest first (Map keeps insertion order): drop a tenth.
      let n = SessionStore.LOCAL_MAX / 10;
      for (const k of this.local.keys()) {
        this.local.delete(k);
        if (--n <= 0) break;
      }
    }
    this.local.set(tokenHash, { s, until: now + this.localTtlMs });
  }

  /** Forgets the process-local copies (what a freshly started api process has). */
  forgetLocal(): void {
    this.local.clear();
  }

  async put(tokenHash: string, s: CachedSession, now = Date.now()): Promise<void> {
    this.remember(tokenHash, s, now);
    const ttl = Math.min(this.ttlSeconds, Math.floor((s.exp - now) / 1000));
    if (ttl <= 0) {
      await this.redis.del(keys.session(tokenHash));
      return;
    }
    await this.redis.set(keys.session(tokenHash), JSON.stringify(s), 'EX', ttl);
  }

  async drop(tokenHashes: string[]): Promise<void> {
    if (tokenHashes.length === 0) return;
    for (const h of tokenHashes) this.local.delete(h);
    await this.redis.del(...tokenHashes.map((h) => keys.session(h)));
  }
}
