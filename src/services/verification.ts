// E-mail verification: proves that whoever registered an address reads its mail, before the
// whitelist join (and any role above `user`) trusts the address.
//
// A token is 53 bytes, base64url (71 characters):
//   version (1) | user id (16) | expiry, unix seconds (4) | random (16) | HMAC-SHA256 (16)
// signed with the database-held 'email_verify' key, so a forged, truncated or re-dated token is
// refused without a database look-up; only its SHA-256 is stored (migration 0043), and the row
// makes it single-use, superseded by a newer link, and bound to the address it was sent to.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logging.js';
import type { Sql } from '../db/pool.js';
import { withAnonymousTx, withUserTx } from '../db/tx.js';
import { DomainError } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { keys } from '../cache/keys.js';
import { audit } from '../repositories/audit.js';
import type { Mailer } from './mailer.js';
import { hashToken } from './auth.js';
import type { UserCache } from './user-cache.js';
import { consumeEmailVerification, emailVerifyKey, issueEmailVerification } from '../repositories/email-verification.js';

interface VerificationDeps {
  sql: Sql;
  redis: Redis;
  log: Logger;
  mailer: Mailer;
  userCache: UserCache;
  /** Base of the link in the e-mail: PUBLIC_URL. */
  publicUrl: string;
  ttlSeconds: number;
  resendPerHour: number;
}

const VERSION = 1;
const BODY = 1 + 16 + 4 + 16;
const MAC = 16;
const TOKEN_RE = /^[A-Za-z0-9_-]{71}$/;

const uuidBytes = (id: string) => Buffer.from(id.replace(/-/g, ''), 'hex');
const uuidOf = (b: Buffer) => {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

const invalid = () => new DomainError('validation_failed', 'token: this verification link is not valid (copy the whole link, or ask for a new e-mail)', [{ field: 'token', message: 'not a valid verification link' }]);
const expired = () => new DomainError('validation_failed', 'token: this verification link has expired; sign in and ask for a new e-mail', [{ field: 'token', message: 'expired' }]);

export class VerificationService {
  private key: Promise<Buffer> | null = null;

  constructor(private readonly d: VerificationDeps) {}

  private getKey(): Promise<Buffer> {
    if (!this.key) {
      this.key = (async () => {
        const k = await emailVerifyKey(this.d.sql);
        if (!k || k.length < 16) throw new Error("the database holds no 'email_verify' key (migration 0043 not applied?)");
        return k;
      })();
      this.key.catch(() => (this.key = null));
    }
    return this.key;
  }

  private async mac(body: Buffer): Promise<Buffer> {
    return createHmac('sha256', await this.getKey()).update('accunode-email-verify\0').update(body).digest().subarray(0, MAC);
  }

  async makeToken(userId: string, expiresAt: Date): Promise<string> {
    const body = Buffer.alloc(BODY);
    body.writeUInt8(VERSION, 0);
    uuidBytes(userId).copy(body, 1);
    body.writeUInt32BE(Math.floor(expiresAt.getTime() / 1000), 17);
    randomBytes(16).copy(body, 21);
    return Buffer.concat([body, await this.mac(body)]).toString('base64url');
  }

  /** The user and expiry a token was signed for; a 422 for anything not signed by us. */
  async readToken(token: string, now = Date.now()): Promise<{ userId: string; expiresAt: Date }> {
    if (!TOKEN_RE.test(token)) throw invalid();
    const raw = Buffer.from(token, 'base64url');
    if (raw.length !== BODY + MAC || raw.readUInt8(0) !== VERSION) throw invalid();
    const body = raw.subarray(0, BODY);
    if (!timingSafeEqual(raw.subarray(BODY), await this.mac(body))) throw invalid();
    const expiresAt = new Date(body.readUInt32BE(17) * 1000);
    if (expiresAt.getTime() <= now) throw expired();
    return { userId: uuidOf(body.subarray(1, 17)), expiresAt };
  }

  link(token: string): string {
    return `${this.d.publicUrl.replace(/\/+$/, '')}/verify-email?token=${token}`;
  }

  /**
   * Records a new link for the user and mails it. Returns when it expires, or null when the
   * address is already verified (nothing sent).
   */
  async send(who: Pick<Principal, 'userId'>): Promise<Date | null> {
    const expiresAt = new Date(Date.now() + this.d.ttlSeconds * 1000);
    const token = await this.makeToken(who.userId, expiresAt);
    const issued = await withUserTx(this.d.sql, who.userId, (tx) => issueEmailVerification(tx, hashToken(token), this.d.ttlSeconds));
    if (!issued) throw new DomainError('unauthorized', 'not signed in');
    if (issued.already_verified) return null;
    const hours = Math.round(this.d.ttlSeconds / 360) / 10;
    await this.d.mailer.send({
      kind: 'verify_email',
      to: issued.email,
      subject: 'Confirm your e-mail address for AccuNode',
      text:
        `Someone (hopefully you) created an AccuNode account with this address.\n\n` +
        `To confirm it is yours, open this link within ${hours} hours:\n\n${this.link(token)}\n\n` +
        `If you did not, ignore this message: the account cannot join any organization without it.\n`,
    });
    return expiresAt;
  }

  /** After registration: a mail that cannot be sent must not undo the account (resend exists). */
  async sendAfterRegister(user: { id: string }): Promise<void> {
    try {
      await this.send({ userId: user.id });
    } catch (err) {
      this.d.log.error({ err, user: user.id }, 'could not send the verification e-mail after registration');
    }
  }

  /** POST /auth/verify/resend: at most resendPerHour per account, whatever the address or device. */
  async resend(who: Principal): Promise<Date> {
    const key = keys.rateLimit(`verify-resend:${who.userId}`, 'POST /api/v1/auth/verify/resend');
    let count = 0;
    let ttl = 3600;
    try {
      [count, ttl] = (await this.d.redis.eval(
        "local c = redis.call('INCR', KEYS[1]) if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return {c, redis.call('TTL', KEYS[1])}",
        1,
        key,
        3600,
      )) as [number, number];
    } catch (err) {
      // Fail closed: without the counter, resend would be an unmetered mail cannon.
      this.d.log.warn({ err }, 'verification resend limit unavailable');
      throw new DomainError('unavailable', 'cannot send a verification e-mail right now; try again shortly');
    }
    if (count > this.d.resendPerHour) {
      throw new DomainError('rate_limited', `at most ${this.d.resendPerHour} verification e-mails per hour; try again later`, { retry_after: Math.max(ttl, 1) });
    }
    const expiresAt = await this.send(who);
    if (!expiresAt) throw new DomainError('conflict', 'your e-mail address is already verified');
    return expiresAt;
  }

  /** POST /auth/verify: consumes the link; returns the verified user's id. */
  async verify(token: string, ip: string | null): Promise<string> {
    const { userId } = await this.readToken(token);
    const r = await withAnonymousTx(this.d.sql, (tx) => consumeEmailVerification(tx, hashToken(token)));
    switch (r?.outcome) {
      case 'verified':
        break;
      case 'used':
        throw new DomainError('conflict', 'this verification link has already been used');
      case 'expired':
        throw expired();
      default:
        throw invalid();
    }
    // Signed for one user, stored for another: cannot happen unless the key leaked; refuse loudly.
    if (r.user_id !== userId) throw invalid();
    await withUserTx(this.d.sql, userId, (tx) => audit(tx, { userId, role: 'user', tenantId: null, organizationId: null }, { action: 'verify_email', table: 'users', rowId: userId }, ip)).catch((err) =>
      this.d.log.warn({ err }, 'could not audit the e-mail verification'),
    );
    await this.d.userCache.invalidate(userId);
    return userId;
  }
}
