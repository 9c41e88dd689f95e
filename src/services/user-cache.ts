import { keys, TTL } from '../cache/keys.js';
import type { CacheAside } from '../cache/cache-aside.js';
import type { UserRow } from '../repositories/users.js';

type CachedUser = Omit<UserRow, 'created_at' | 'updated_at'> & { created_at: string; updated_at: string };

/** cache:user:{id} for 15 minutes, through the shared cache-aside (outage-safe, single-flight). */
export class UserCache {
  constructor(private readonly cache: CacheAside) {}

  async get(id: string, load: () => Promise<UserRow | null>, who: string): Promise<UserRow | null> {
    const u = await this.cache.get<CachedUser>('user', keys.user(id), TTL.user, async () => {
      const row = await load();
      return row ? { ...row, created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString() } : null;
    }, who);
    return u ? { ...u, created_at: new Date(u.created_at), updated_at: new Date(u.updated_at) } : null;
  }

  invalidate(id: string): Promise<void> {
    return this.cache.invalidate('user', keys.user(id));
  }
}
