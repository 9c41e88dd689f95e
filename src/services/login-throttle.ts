// Password-guessing throttle for POST /auth/login (OWASP Authentication Cheat Sheet: "Protect
// against automated attacks"; exponential back-off rather than a hard lock-out an attacker can
// use to keep the owner out).
//
// The subject is the account, not the login string: the resolved user id, or for a login that
// names no account a hash of its canonical form (trimmed, lower case), so an e-mail address and
// a username of one account share one budget, and an unknown login is throttled exactly like a
// known one (the answers tell nothing about which logins exist).
//
// Two controls, both in Redis, keys hash-tagged by subject (one slot: one Lua script each):
// - back-off per subject and client IP, `login:{s}:ip:{ip}` (hash n, next): every attempt
//   counts; from the FREE_ATTEMPTS-th on, the next attempt from that IP waits BASE * 2^k seconds
//   (1, 2, 4, … capped at MAX_DELAY); a successful login clears it; it is forgotten after a day
//   without attempts;
// - a ceiling per subject, `login:{s}:fails`: failed attempts within an hour from anywhere. Past
//   RATE_LIMIT_LOGIN, addresses the account has never signed in from wait for the hour to end,
//   while the addresses it has (`login:{s}:known`, a sorted set, kept KNOWN_DAYS after their last
//   successful login) still get their own back-off only: the owner signs in from its usual
//   place during an attack.
// The IP is the one Fastify resolved under TRUST_PROXY (req.ip), never a header taken on trust.
// A Redis outage lets logins through (argon2 still costs every guess); the route's per-IP limit
// stays.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logging.js';
import { DomainError } from '../domain/errors.js';

export const LOGIN_BACKOFF = {
  FREE_ATTEMPTS: 3,
  BASE_DELAY_SECONDS: 1,
  MAX_DELAY_SECONDS: 900,
  /** How long the back-off state of an account and IP is kept after the last attempt. */
  STATE_SECONDS: 86_400,
  CEILING_WINDOW_SECONDS: 3_600,
  /** Known addresses kept per account (the most recent). */
  KNOWN_MAX: 50,
} as const;

interface LoginThrottleOptions {
  /** Failed attempts per account per hour before unknown addresses must wait (RATE_LIMIT_LOGIN). */
  ceilingPerHour: number;
  /** How long an address that signed in stays known (LOGIN_KNOWN_IP_DAYS). */
  knownDays: number;
}

/** The throttle's subject for a login: the account, or the canonical login when no account has it. */
export function loginSubject(login: string, userId: string | null): string {
  if (userId) return `u:${userId}`;
  return 'l:' + createHash('sha256').update(login.trim().toLowerCase()).digest('hex').slice(0, 32);
}

export const loginKeys = {
  backoff: (subject: string, ip: string) => `login:{${subject}}:ip:${ip}`,
  fails: (subject: string) => `login:{${subject}}:fails`,
  known: (subject: string) => `login:{${subject}}:known`,
};

// KEYS: backoff, fails, known. ARGV: now ms, ip, ceiling, free, base s, max s, state s.
// Returns {0} when the attempt may go ahead (and has been counted), else {1, retry s} for the
// back-off or {2, retry s} for the ceiling.
const ATTEMPT = `
local now = tonumber(ARGV[1])
local nxt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
if now < nxt then return {1, math.ceil((nxt - now) / 1000)} end
local fails = tonumber(redis.call('GET', KEYS[2]) or '0')
if fails >= tonumber(ARGV[3]) and not redis.call('ZSCORE', KEYS[3], ARGV[2]) then
  local ttl = redis.call('TTL', KEYS[2])
  if ttl < 1 then ttl = 1 end
  return {2, ttl}
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local free = tonumber(ARGV[4])
local delay = 0
if n >= free then delay = math.min(tonumber(ARGV[5]) * 2 ^ (n - free), tonumber(ARGV[6])) end
redis.call('HSET', KEYS[1], 'next', math.floor(now + delay * 1000))
redis.call('EXPIRE', KEYS[1], ARGV[7])
return {0}
`;

// KEYS: fails. ARGV: window s.
const FAILED = `
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return c
`;

// KEYS: backoff, known. ARGV: now ms, ip, known s, known max.
const SUCCEEDED = `
redis.call('DEL', KEYS[1])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[3]) * 1000)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -1 - tonumber(ARGV[4]))
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
`;

export class LoginThrottle {
  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
    private readonly o: LoginThrottleOptions,
  ) {}

  /** Counts an attempt, or refuses it (429 with Retry-After) before the password is looked at. */
  async attempt(subject: string, ip: string | null, now = Date.now()): Promise<void> {
    const addr = ip ?? 'unknown';
    let res: [number, number?];
    try {
      res = (await this.redis.eval(
        ATTEMPT, 3, loginKeys.backoff(subject, addr), loginKeys.fails(subject), loginKeys.known(subject),
        now, addr, this.o.ceilingPerHour, LOGIN_BACKOFF.FREE_ATTEMPTS, LOGIN_BACKOFF.BASE_DELAY_SECONDS, LOGIN_BACKOFF.MAX_DELAY_SECONDS, LOGIN_BACKOFF.STATE_SECONDS,
      )) as [number, number?];
    } catch (err) {
      this.log.warn({ err }, 'login throttle unavailable');
      return;
    }
    const [verdict, retry = 1] = res;
    if (verdict === 1) {
      throw new DomainError('rate_limited', `too many login attempts from this address for this account; try again in ${retry} s`, { retry_after: retry });
    }
    if (verdict === 2) {
      throw new DomainError('rate_limited', 'too many failed logins for this account; try again later, or from a device that has signed in to it before', { retry_after: retry });
    }
  }

  async failed(subject: string): Promise<void> {
    await this.redis.eval(FAILED, 1, loginKeys.fails(subject), LOGIN_BACKOFF.CEILING_WINDOW_SECONDS).catch((err: unknown) => this.log.warn({ err }, 'login throttle unavailable'));
  }

  async succeeded(subject: string, ip: string | null, now = Date.now()): Promise<void> {
    const addr = ip ?? 'unknown';
    await this.redis
      .eval(SUCCEEDED, 2, loginKeys.backoff(subject, addr), loginKeys.known(subject), now, addr, this.o.knownDays * 86_400, LOGIN_BACKOFF.KNOWN_MAX)
      .catch((err: unknown) => this.log.warn({ err }, 'login throttle unavailable'));
  }
}
