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

export class SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
  ) {}

  async get(tokenHash: string): Promise<CachedSession | null> {
    const raw = await this.redis.get(keys.session(tokenHash));
    if (!raw) return null;
    try {
      return JSON.parse(raw) as CachedSession;
    } catch {
      return null;
    }
  }

  async put(tokenHash: string, s: CachedSession, now = Date.now()): Promise<void> {
    const ttl = Math.min(this.ttlSeconds, Math.floor((s.exp - now) / 1000));
    if (ttl <= 0) {
      await this.redis.del(keys.session(tokenHash));
      return;
    }
    await this.redis.set(keys.session(tokenHash), JSON.stringify(s), 'EX', ttl);
  }

  async drop(tokenHashes: string[]): Promise<void> {
    if (tokenHashes.length === 0) return;
    await this.redis.del(...tokenHashes.map((h) => keys.session(h)));
  }
}
