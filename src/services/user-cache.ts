import type { Redis } from 'ioredis';
import type { Logger } from '../logging.js';
import { keys, TTL } from '../cache/keys.js';
import type { UserRow } from '../repositories/users.js';

/**
 * cache:user:{id} for 15 minutes. A cache failure never fails a request: reads fall back to
 * the database, writes are skipped (a noeviction Redis refusing for memory included).
 */
export class UserCache {
  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
  ) {}

  async get(id: string): Promise<UserRow | null> {
    try {
      const raw = await this.redis.get(keys.user(id));
      if (!raw) return null;
      const u = JSON.parse(raw) as UserRow & { created_at: string; updated_at: string };
      return { ...u, created_at: new Date(u.created_at), updated_at: new Date(u.updated_at) };
    } catch (err) {
      this.log.debug({ err }, 'user cache read failed');
      return null;
    }
  }

  async set(u: UserRow): Promise<void> {
    try {
      await this.redis.set(keys.user(u.id), JSON.stringify(u), 'EX', TTL.user);
    } catch (err) {
      this.log.debug({ err }, 'user cache write skipped');
    }
  }

  async invalidate(id: string): Promise<void> {
    try {
      await this.redis.del(keys.user(id));
    } catch (err) {
      this.log.warn({ err, user: id }, 'user cache invalidation failed');
    }
  }
}
