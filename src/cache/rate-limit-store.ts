// The rate-limit counters (`rate_limit:{subject}:{endpoint}`, one hour), as @fastify/rate-limit's
// store. Signed-in callers' requests are counted in Redis ahead of use: one call reserves a
// share of the limit (a hundredth, at most RESERVE_MAX) and the next requests of that key in this
// process spend it without a round trip. The counter in Redis is therefore always at least the
// requests made, never fewer: a reservation that is not used up by the end of the window is
// lost, so with several API processes the limit can only come out tighter (by at most one
// reservation per process), never looser. Near the limit a reservation shrinks to the requests
// still allowed, and over it to one, so exactly `max` requests pass however many processes share
// the key. Anonymous keys (`ip:…`: login, register, unauthenticated routes) are counted one
// request per call, exactly, as brute-force limits should be.
import type { Redis } from 'ioredis';

/** The largest share one call reserves (requests of one key in one process). */
const RESERVE_MAX = 64;
/** Keys kept in this process; the oldest are forgotten first (their reservation is lost). */
const LOCAL_MAX = 50_000;

// KEYS[1] counter; ARGV: window ms, wanted, max. Grants min(wanted, max - count) but at least
// one, so requests over the limit still count (as the plugin's own script does).
const RESERVE = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.max(1, math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - cur))
local v = redis.call('INCRBY', KEYS[1], grant)
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {v, grant, ttl}
`;
const READ = `
local cur = redis.call('GET', KEYS[1])
if not cur then return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return {tonumber(cur), ttl}
`;

interface Reservation {
  /** The counter in Redis after the last reservation. */
  count: number;
  /** Reserved requests not yet spent. */
  left: number;
  /** When the window (and with it the reservation) ends, by this process's clock. */
  until: number;
}

type Done = (err: Error | null, res: { current: number; ttl: number } | null) => void;

interface RateLimitRedis extends Redis {
  accunodeRateReserve(key: string, windowMs: number, wanted: number, max: number): Promise<[number, number, number]>;
  accunodeRateRead(key: string): Promise<[number, number]>;
}

export function reservationFor(key: string, max: number): number {
  if (key.startsWith('ip:')) return 1;
  return Math.max(1, Math.min(RESERVE_MAX, Math.floor(max / 100)));
}

export class ReservingRateLimitStore {
  private readonly local = new Map<string, Reservation>();
  private readonly pending = new Map<string, Promise<unknown>>();
  private readonly redis: RateLimitRedis;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly now: () => number = Date.now,
  ) {
    const r = redis as RateLimitRedis;
    if (typeof r.accunodeRateReserve !== 'function') {
      r.defineCommand('accunodeRateReserve', { numberOfKeys: 1, lua: RESERVE });
      r.defineCommand('accunodeRateRead', { numberOfKeys: 1, lua: READ });
    }
    this.redis = r;
  }

  incr(key: string, cb: Done, timeWindow: number, max: number): void {
    this.take(key, timeWindow, max).then((res) => cb(null, res), (err: Error) => cb(err, null));
  }

  read(key: string, cb: Done): void {
    this.redis.accunodeRateRead(this.prefix + key).then(([current, ttl]) => {
      const r = this.local.get(key);
      cb(null, { current: r && r.until > this.now() ? current - r.left : current, ttl });
    }, (err: Error) => cb(err, null));
  }

  /** Per-route stores are not used here (every route shares the global key generator). */
  child(): this {
    return this;
  }

  private async take(key: string, windowMs: number, max: number): Promise<{ current: number; ttl: number }> {
    for (;;) {
      const now = this.now();
      const r = this.local.get(key);
      if (r && r.until > now && r.left > 0) {
        r.left--;
        return { current: r.count - r.left, ttl: r.until - now };
      }
      // One reservation per key at a time: the others wait for it and spend from it.
      const inFlight = this.pending.get(key);
      if (inFlight) {
        await inFlight.catch(() => {});
        continue;
      }
      const p = this.reserve(key, windowMs, max);
      this.pending.set(key, p);
      try {
        return await p;
      } finally {
        this.pending.delete(key);
      }
    }
  }

  private async reserve(key: string, windowMs: number, max: number): Promise<{ current: number; ttl: number }> {
    const [count, grant, ttl] = await this.redis.accunodeRateReserve(this.prefix + key, windowMs, reservationFor(key, max), max);
    const left = grant - 1;
    if (left > 0) {
      if (this.local.size >= LOCAL_MAX) this.forgetOldest();
      this.local.delete(key);
      this.local.set(key, { count, left, until: this.now() + ttl });
    } else {
      this.local.delete(key);
    }
    return { current: count - left, ttl };
  }

  private forgetOldest(): void {
    let n = LOCAL_MAX / 10;
    for (const k of this.local.keys()) {
      this.local.delete(k);
      if (--n <= 0) break;
    }
  }
}
