import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logging.js';
import type { Sql, TxSql } from '../db/pool.js';
import { withAnonymousTx, withUserTx } from '../db/tx.js';
import { DomainError } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { SessionStore, sessionKeyFromDatabase, type CachedSession } from '../cache/sessions.js';
import * as usersRepo from '../repositories/users.js';
import * as sessionsRepo from '../repositories/sessions.js';
import { audit } from '../repositories/audit.js';
import { dummyHash, hashPassword, verifyPassword } from './passwords.js';
import type { UserCache } from './user-cache.js';
import { LoginThrottle, loginSubject } from './login-throttle.js';

interface AuthDeps {
  sql: Sql;
  redis: Redis;
  log: Logger;
  userCache: UserCache;
  sessionTtlSeconds: number;
  sessionAbsoluteTtlSeconds: number;
  /** Failed logins per account per hour before addresses it never signed in from must wait. */
  loginLimitPerHour: number;
  /** How long an address an account signed in from stays known to the throttle (default 30). */
  loginKnownIpDays?: number;
}

interface ClientInfo {
  ip: string | null;
  userAgent: string | null;
}

interface IssuedSession {
  token: string;
  expires_at: Date;
  session_id: string;
}

const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
// last_activity and the Redis TTL are rewritten at most this often per session.
const TOUCH_INTERVAL_MS = 60_000;

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');
const principalOf = (s: CachedSession): Principal => ({
  userId: s.uid,
  role: s.role,
  tenantId: s.tenant,
  organizationId: s.org,
  sessionId: s.sid,
});

export function passwordProblem(password: string, ...personal: Array<string | null | undefined>): string | null {
  if (password.length < 12) return 'must be at least 12 characters';
  if (password.length > 128) return 'must be at most 128 characters';
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length;
  if (classes < 3) return 'must mix at least three of: lower case, upper case, digits, symbols';
  const lower = password.toLowerCase();
  for (const p of personal) if (p && p.length >= 3 && lower.includes(p.toLowerCase())) return 'must not contain your email or username';
  return null;
}

export class AuthService {
  readonly sessions: SessionStore;

  private readonly throttle: LoginThrottle;

  constructor(private readonly d: AuthDeps) {
    this.sessions = new SessionStore(d.redis, d.sessionTtlSeconds, undefined, sessionKeyFromDatabase(d.sql));
    this.throttle = new LoginThrottle(d.redis, d.log, { ceilingPerHour: d.loginLimitPerHour, knownDays: d.loginKnownIpDays ?? 30 });
  }

  /**
   * The idle limit a touch checks in the database. One touch interval longer than the TTL: a
   * session rebuilt from the database without a touch (last_activity under a minute old) gets a
   * full Redis TTL from the rebuild, so its row may look up to that much older than its key.
   */
  private get touchIdleSeconds(): number {
    return this.d.sessionTtlSeconds + TOUCH_INTERVAL_MS / 1000;
  }

  /**
   * Resolves a bearer token to its principal: Redis first; on a miss the database, whose answer
   * rebuilds the Redis entry. At most once a minute per session the database is asked again
   * (and last_activity written), so even a revocation whose notification was lost wins within
   * a minute; the NOTIFY listener makes it immediate.
   *
   * Two lifetimes: the idle one (sessionTtlSeconds, sliding) ends a session not used for that
   * long, the absolute one (expires_at) ends it whatever its use. The idle one is the Redis key's
   * TTL and, for a session Redis no longer holds, last_activity + TTL in the database: a lapsed
   * key must not be rebuilt from a row that has been idle just as long.
   */
  async authenticate(token: string, now = Date.now()): Promise<Principal | null> {
    if (!TOKEN_RE.test(token)) return null;
    const hash = hashToken(token);
    let cached: CachedSession | null = null;
    try {
      cached = await this.sessions.get(hash, now);
    } catch (err) {
      this.d.log.warn({ err }, 'session store unavailable; checking the database');
    }
    if (cached) {
      if (cached.exp <= now) {
        await this.sessions.drop([hash]).catch(() => {});
        return null;
      }
      if (now - cached.w < TOUCH_INTERVAL_MS) return principalOf(cached);
      const still = await withUserTx(this.d.sql, cached.uid, (tx) => sessionsRepo.touchSession(tx, cached!.sid, this.touchIdleSeconds));
      if (!still) {
        await this.sessions.drop([hash]).catch(() => {});
        return null;
      }
      const renewed = { ...cached, w: now };
      await this.sessions.put(hash, renewed, now).catch(() => {});
      return principalOf(renewed);
    }
    const row = await withAnonymousTx(this.d.sql, (tx) => sessionsRepo.lookupSession(tx, hash));
    if (!row || row.revoked_at || !row.user_active || row.expires_at.getTime() <= now) return null;
    if (row.last_activity.getTime() + this.d.sessionTtlSeconds * 1000 <= now) return null;
    const user = await withUserTx(this.d.sql, row.user_id, async (tx) => {
      if (now - row.last_activity.getTime() >= TOUCH_INTERVAL_MS && !(await sessionsRepo.touchSession(tx, row.session_id, this.touchIdleSeconds))) return null;
      return usersRepo.findUser(tx, row.user_id);
    });
    if (!user) return null;
    const rebuilt: CachedSession = {
      sid: row.session_id,
      uid: user.id,
      role: user.role,
      tenant: user.tenant_id,
      org: user.organization_id,
      exp: row.expires_at.getTime(),
      w: now,
    };
    await this.sessions.put(hash, rebuilt, now).catch((err) => this.d.log.warn({ err }, 'could not rebuild session in Redis'));
    return principalOf(rebuilt);
  }

  private async issue(tx: TxSql, user: usersRepo.UserRow, client: ClientInfo): Promise<IssuedSession & { cached: CachedSession; hash: string }> {
    const token = randomBytes(32).toString('base64url');
    const hash = hashToken(token);
    const expires = new Date(Date.now() + this.d.sessionAbsoluteTtlSeconds * 1000);
    const s = await sessionsRepo.insertSession(tx, { user_id: user.id, token_hash: hash, expires_at: expires, ip: client.ip, user_agent: client.userAgent?.slice(0, 500) ?? null });
    const cached: CachedSession = { sid: s.id, uid: user.id, role: user.role, tenant: user.tenant_id, org: user.organization_id, exp: expires.getTime(), w: Date.now() };
    return { token, expires_at: expires, session_id: s.id, cached, hash };
  }

  /**
   * Creates a plain account. Whether the e-mail address or the username was already taken is not
   * told to the caller (an attacker would learn who has an account): the outcome is returned for
   * the audit trail and tests, and the route answers the same either way. Both outcomes cost the
   * same work (the password is hashed and the insert tried before the conflict is known). No
   * session is issued: that, too, would tell a new account from a taken address; the client
   * signs in.
   */
  async register(
    input: { email: string; username: string; password: string; first_name?: string | null; last_name?: string | null },
    client: ClientInfo,
  ): Promise<{ created: boolean; user: usersRepo.UserRow | null }> {
    const problem = passwordProblem(input.password, input.email.split('@')[0], input.username);
    if (problem) throw new DomainError('validation_failed', `password: ${problem}`, [{ field: 'password', message: problem }]);
    const hash = await hashPassword(input.password);
    const id = randomUUID();
    try {
      const user = await withUserTx(this.d.sql, id, async (tx) => {
        const user = await usersRepo.insertUser(tx, {
          id,
          tenant_id: null,
          organization_id: null,
          email: input.email.toLowerCase(),
          username: input.username,
          first_name: input.first_name ?? null,
          last_name: input.last_name ?? null,
          role: 'user',
        });
        await usersRepo.setPassword(tx, id, hash);
        const who: Principal = { userId: id, role: 'user', tenantId: null, organizationId: null };
        await audit(tx, who, { action: 'register', table: 'users', rowId: id, after: user }, client.ip);
        return user;
      });
      return { created: true, user };
    } catch (err) {
      const msg = (err as Error).message;
      if (/idx_users_email_lower|users_email_key|idx_users_username_lower|users_username_key/.test(msg)) {
        this.d.log.info({ ip: client.ip }, 'registration for an e-mail address or username already in use (not told to the client)');
        return { created: false, user: null };
      }
      throw err;
    }
  }

  /** Password guessing is throttled per account and per account+IP (see login-throttle.ts). */
  async login(login: string, password: string, client: ClientInfo): Promise<{ user: usersRepo.UserRow; session: IssuedSession }> {
    const found = await withAnonymousTx(this.d.sql, (tx) => usersRepo.authLookup(tx, login));
    const subject = loginSubject(login, found?.user_id ?? null);
    await this.throttle.attempt(subject, client.ip);
    // The same argon2 work whether or not the account exists, so timing tells nothing.
    const stored = found?.password_hash ?? (await dummyHash());
    const ok = await verifyPassword(stored, password);
    if (!found || !found.password_hash || !found.is_active || !ok) {
      await this.throttle.failed(subject);
      throw new DomainError('unauthorized', 'invalid login or password');
    }
    await this.throttle.succeeded(subject, client.ip);
    const result = await withUserTx(this.d.sql, found.user_id, async (tx) => {
      const user = (await usersRepo.findUser(tx, found.user_id))!;
      const s = await this.issue(tx, user, client);
      const who: Principal = { userId: user.id, role: user.role, tenantId: user.tenant_id, organizationId: user.organization_id };
      await audit(tx, who, { action: 'login', table: 'user_sessions', rowId: s.session_id }, client.ip);
      return { user, s };
    });
    await this.sessions.put(result.s.hash, result.s.cached).catch(() => {});
    return { user: result.user, session: { token: result.s.token, expires_at: result.s.expires_at, session_id: result.s.session_id } };
  }

  async logout(who: Principal, ip: string | null): Promise<void> {
    if (!who.sessionId) return;
    const hash = await withUserTx(this.d.sql, who.userId, async (tx) => {
      const h = await sessionsRepo.revokeSession(tx, who.sessionId!, who.userId);
      await audit(tx, who, { action: 'logout', table: 'user_sessions', rowId: who.sessionId! }, ip);
      return h;
    });
    if (hash) await this.sessions.drop([hash]).catch(() => {});
  }

  /** Logout everywhere: every session of the user ends, this one included. Returns how many. */
  async revokeAll(who: Principal, ip: string | null): Promise<number> {
    const hashes = await withUserTx(this.d.sql, who.userId, async (tx) => {
      const h = await sessionsRepo.revokeUserSessions(tx, who.userId);
      await audit(tx, who, { action: 'logout_all', table: 'user_sessions', rowId: who.sessionId ?? who.userId }, ip);
      return h;
    });
    await this.sessions.drop(hashes).catch(() => {});
    return hashes.length;
  }

  async listSessions(who: Principal): Promise<Array<sessionsRepo.SessionRow & { current: boolean }>> {
    const rows = await withUserTx(this.d.sql, who.userId, (tx) => sessionsRepo.listSessions(tx, who.userId));
    return rows.map((r) => ({ ...r, current: r.id === who.sessionId }));
  }

  async revokeSession(who: Principal, sessionId: string, ip: string | null): Promise<void> {
    const hash = await withUserTx(this.d.sql, who.userId, async (tx) => {
      const h = await sessionsRepo.revokeSession(tx, sessionId, who.userId);
      if (h) await audit(tx, who, { action: 'revoke_session', table: 'user_sessions', rowId: sessionId }, ip);
      return h;
    });
    if (!hash) throw new DomainError('not_found', 'session not found');
    await this.sessions.drop([hash]).catch(() => {});
  }

  async changePassword(who: Principal, current: string, next: string, ip: string | null): Promise<void> {
    const user = await withUserTx(this.d.sql, who.userId, (tx) => usersRepo.findUser(tx, who.userId));
    if (!user) throw new DomainError('unauthorized', 'not signed in');
    const stored = await withUserTx(this.d.sql, who.userId, (tx) => usersRepo.passwordHashOf(tx, who.userId));
    if (!stored || !(await verifyPassword(stored, current))) {
      throw new DomainError('validation_failed', 'current_password: does not match', [{ field: 'current_password', message: 'does not match' }]);
    }
    const problem = passwordProblem(next, user.email.split('@')[0], user.username);
    if (problem) throw new DomainError('validation_failed', `new_password: ${problem}`, [{ field: 'new_password', message: problem }]);
    const hash = await hashPassword(next);
    const revoked = await withUserTx(this.d.sql, who.userId, async (tx) => {
      await usersRepo.setPassword(tx, who.userId, hash);
      const hashes = await sessionsRepo.revokeUserSessions(tx, who.userId, who.sessionId);
      await audit(tx, who, { action: 'change_password', table: 'user_credentials', rowId: who.userId }, ip);
      return hashes;
    });
    await this.sessions.drop(revoked).catch(() => {});
  }

  async join(who: Principal, joinToken: string, ip: string | null): Promise<usersRepo.UserRow> {
    const tokenHash = hashToken(joinToken);
    try {
      const user = await withUserTx(this.d.sql, who.userId, async (tx) => {
        const before = await usersRepo.findUser(tx, who.userId);
        await usersRepo.joinOrganization(tx, tokenHash);
        const after = (await usersRepo.findUser(tx, who.userId))!;
        await audit(tx, { ...who, tenantId: after.tenant_id, organizationId: after.organization_id }, { action: 'join', table: 'users', rowId: who.userId, before, after }, ip);
        return after;
      });
      await this.forgetUser(who.userId);
      return user;
    } catch (err) {
      const code = (err as { code?: string }).code;
      const message = (err as Error).message;
      if (code === 'P0404') throw new DomainError('not_found', message);
      // The role guard (migration 0043) refuses an unverified address at the last step of the join.
      if (code === 'P0403' && /not verified/.test(message)) throw new DomainError('forbidden', 'verify your e-mail address before joining an organization: follow the link in the verification e-mail (POST /auth/verify/resend sends a new one)');
      if (code === 'P0403') throw new DomainError('forbidden', message);
      if (code === 'P0409') throw new DomainError('conflict', message);
      if (code === 'P0401') throw new DomainError('unauthorized', message);
      throw err;
    }
  }

  /**
   * After a change to a user: drop its cached profile and its sessions' cached principals. The
   * sessions are read as the user and, when an admin made the change, as that admin too: a
   * deactivated user (or one of an inactive organization) no longer reads its own rows, and a
   * member an org admin removed is no longer the admin's to read.
   */
  async forgetUser(userId: string, actorId?: string): Promise<void> {
    const readers = actorId && actorId !== userId ? [userId, actorId] : [userId];
    const found = await Promise.all(
      readers.map((r) => withUserTx(this.d.sql, r, (tx) => sessionsRepo.cachedSessionHashes(tx, userId)).catch(() => [] as string[])),
    );
    const hashes = [...new Set(found.flat())];
    await Promise.all([this.sessions.drop(hashes).catch(() => {}), this.d.userCache.invalidate(userId)]);
  }

  /** Every api process drops the Redis copy of a session revoked in the database. */
  async listenForRevocations(listenSql: Sql): Promise<{ unlisten: () => Promise<void> }> {
    const sub = await listenSql.listen('accunode_session_revoked', (hash) => {
      if (/^[0-9a-f]{64}$/.test(hash)) this.sessions.drop([hash]).catch((err) => this.d.log.warn({ err }, 'could not drop revoked session'));
    });
    return { unlisten: () => sub.unlisten() };
  }
}
