import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Sql } from '../db/pool.js';
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
/**
 * Redis is not trusted to vouch for a session: anyone who can write a key there could otherwise
 * write session:{sha256(any token)} = {"role":"super_admin",…}. Every entry carries an HMAC
 * (`mac`) of its JSON and its token hash under a key only the database holds (app_secret
 * ('session'), migration 0042); an entry without a valid one is read as absent, so the session is
 * looked up in the database, which knows no such token.
 */
type SessionKey = () => Promise<Buffer>;

export function sessionKeyFromDatabase(sql: Sql): SessionKey {
  return async () => {
    const [r] = await sql<{ k: Buffer | null }[]>`select app_secret('session') as k`;
    if (!r?.k || r.k.length < 16) throw new Error("the database holds no 'session' key (migration 0042 not applied?)");
    return r.k;
  };
}

const noKey: SessionKey = () => Promise.reject(new Error('no session signing key configured: sessions are checked in the database'));

export class SessionStore {
  private readonly local = new Map<string, { s: CachedSession; until: number }>();
  private static readonly LOCAL_MAX = 10_000;
  /**
   * Sessions this process dropped (revoked, expired, logged out) in the last TOMBSTONE_MS: a
   * request that read the session from the database or Redis before the revocation committed
   * must not put it back afterwards, in Redis or here. Without this, a request in flight during
   * "log out everywhere" re-cached the revoked session in Redis for its whole idle lifetime.
   * Every api process drops on the revocation NOTIFY, so each holds the tombstone too.
   */
  private readonly dropped = new Map<string, number>();
  private static readonly TOMBSTONE_MS = 120_000;
  private keyP: Promise<Buffer> | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
    private readonly localTtlMs = 5_000,
    private readonly loadKey: SessionKey = noKey,
  ) {}

  private key(): Promise<Buffer> {
    if (!this.keyP) {
      this.keyP = this.loadKey();
      this.keyP.catch(() => {
        this.keyP = null;
      });
    }
    return this.keyP;
  }

  private async mac(tokenHash: string, json: string): Promise<Buffer> {
    return createHmac('sha256', await this.key()).update(tokenHash).update('\n').update(json).digest();
  }

  /** The Redis value for a session: its JSON with the `mac` that binds it to its token hash. */
  async seal(tokenHash: string, s: CachedSession): Promise<string> {
    const { mac: _ignored, ...body } = s as CachedSession & { mac?: unknown };
    return JSON.stringify({ ...body, mac: (await this.mac(tokenHash, JSON.stringify(body))).toString('base64url') });
  }

  /** The session a Redis value holds, or null when it is not one this deployment signed for this token. */
  async open(tokenHash: string, raw: string): Promise<CachedSession | null> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      return null;
    }
    if (!parsed || typeof parsed !== 'object' || typeof (parsed as { mac?: unknown }).mac !== 'string') return null;
    const { mac, ...body } = parsed as CachedSession & { mac: string };
    const want = await this.mac(tokenHash, JSON.stringify(body));
    const got = Buffer.from(mac, 'base64url');
    return got.length === want.length && timingSafeEqual(got, want) ? body : null;
  }

  async get(tokenHash: string, now = Date.now()): Promise<CachedSession | null> {
    const hit = this.local.get(tokenHash);
    if (hit && hit.until > now) return hit.s;
    if (hit) this.local.delete(tokenHash);
    const raw = await this.redis.get(keys.session(tokenHash));
    if (!raw) return null;
    const s = await this.open(tokenHash, raw);
    // Dropped while Redis answered: the copy read is the revoked one.
    if (this.wasDropped(tokenHash)) return null;
    if (s) this.remember(tokenHash, s, now);
    return s;
  }

  private wasDropped(tokenHash: string): boolean {
    const until = this.dropped.get(tokenHash);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.dropped.delete(tokenHash);
    return false;
  }

  private remember(tokenHash: string, s: CachedSession, now: number): void {
    if (this.localTtlMs <= 0 || this.wasDropped(tokenHash)) return;
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
    if (this.wasDropped(tokenHash)) return;
    this.remember(tokenHash, s, now);
    const ttl = Math.min(this.ttlSeconds, Math.floor((s.exp - now) / 1000));
    if (ttl <= 0) {
      await this.redis.del(keys.session(tokenHash));
      return;
    }
    await this.redis.set(keys.session(tokenHash), await this.seal(tokenHash, s), 'EX', ttl);
  }

  async drop(tokenHashes: string[]): Promise<void> {
    if (tokenHashes.length === 0) return;
    const until = Date.now() + SessionStore.TOMBSTONE_MS;
    if (this.dropped.size > 100_000) {
      const now = Date.now();
      for (const [h, t] of this.dropped) if (t <= now) this.dropped.delete(h);
    }
    for (const h of tokenHashes) {
      this.local.delete(h);
      this.dropped.set(h, until);
    }
    await this.redis.del(...tokenHashes.map((h) => keys.session(h)));
  }
}
