// The reserving rate-limit store against a real Redis: a signed-in key's requests are counted a
// share at a time, never more requests pass than the limit however many processes share the key,
// anonymous keys are counted exactly, and a window's end starts a new one.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReservingRateLimitStore, reservationFor } from '../../src/cache/rate-limit-store.js';
import { TEST_REDIS_URL } from '../helpers/env.js';

const HOUR = 3_600_000;
let redis: Redis;
let prefix: string;

beforeAll(() => {
  redis = new Redis(TEST_REDIS_URL);
  prefix = `test:rl:${randomBytes(6).toString('hex')}:`;
});
afterAll(async () => {
  const ks = await redis.keys(`${prefix}*`);
  if (ks.length > 0) await redis.del(...ks);
  redis.disconnect();
});

function take(store: ReservingRateLimitStore, key: string, max: number, windowMs = HOUR): Promise<{ current: number; ttl: number }> {
  return new Promise((resolve, reject) => store.incr(key, (err, res) => (err ? reject(err) : resolve(res!)), windowMs, max));
}

describe('reserving rate-limit store', () => {
  it('reserves a hundredth of the limit per call and counts each request in order', async () => {
    const store = new ReservingRateLimitStore(redis, prefix);
    const key = 'user-a:POST /api/v1/predictions/annual';
    const currents: number[] = [];
    for (let i = 0; i < 11; i++) currents.push((await take(store, key, 1000)).current);
    expect(currents).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // Two reservations of ten: the counter is ahead of the requests, never behind.
    expect(await redis.get(prefix + key)).toBe('20');
    expect(await redis.pttl(prefix + key)).toBeGreaterThan(HOUR - 60_000);
  });

  it('concurrent requests of one key share one reservation', async () => {
    const store = new ReservingRateLimitStore(redis, prefix);
    const key = 'user-b:GET /api/v1/predictions/annual';
    const res = await Promise.all(Array.from({ length: 30 }, () => take(store, key, 1000)));
    expect(res.map((r) => r.current).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(await redis.get(prefix + key)).toBe('30');
  });

  it('several processes on one key let exactly the limit through', async () => {
    const a = new ReservingRateLimitStore(redis, prefix);
    const b = new ReservingRateLimitStore(redis, prefix);
    const c = new ReservingRateLimitStore(redis, prefix);
    const key = 'user-c:GET /api/v1/companies';
    const max = 700; // reservations of seven
    const stores = [a, b, c];
    const res = await Promise.all(Array.from({ length: 1000 }, (_, i) => take(stores[i % 3]!, key, max)));
    expect(res.filter((r) => r.current <= max)).toHaveLength(max);
    // Over the limit a reservation is one request, so every refused request is counted.
    expect(Number(await redis.get(prefix + key))).toBe(1000);
  });

  it('near the limit a reservation shrinks to what is left', async () => {
    const store = new ReservingRateLimitStore(redis, prefix);
    const key = 'user-d:GET /api/v1/portfolio';
    await redis.set(prefix + key, '995', 'PX', HOUR);
    const currents: number[] = [];
    for (let i = 0; i < 7; i++) currents.push((await take(store, key, 1000)).current);
    expect(currents).toEqual([996, 997, 998, 999, 1000, 1001, 1002]);
    expect(await redis.get(prefix + key)).toBe('1002');
  });

  it('anonymous keys are counted one request per call', async () => {
    expect(reservationFor('ip:203.0.113.9:POST /api/v1/auth/login', 1_000_000)).toBe(1);
    const store = new ReservingRateLimitStore(redis, prefix);
    const key = 'ip:203.0.113.9:GET /api/v1/auth/me';
    for (let i = 0; i < 3; i++) await take(store, key, 100_000);
    expect(await redis.get(prefix + key)).toBe('3');
  });

  it('a reservation ends with its window', async () => {
    let now = Date.now();
    const store = new ReservingRateLimitStore(redis, prefix, () => now);
    const key = 'user-e:GET /api/v1/users';
    expect((await take(store, key, 1000, 200)).current).toBe(1);
    expect((await take(store, key, 1000, 200)).current).toBe(2);
    await new Promise((r) => setTimeout(r, 250));
    now += 250;
    // The Redis key expired with the window, and the unspent reservation with it.
    expect((await take(store, key, 1000, 200)).current).toBe(1);
    expect(await redis.get(prefix + key)).toBe('10');
  });

  it('reads the count without spending', async () => {
    const store = new ReservingRateLimitStore(redis, prefix);
    const key = 'user-f:GET /api/v1/jobs';
    await take(store, key, 1000);
    await take(store, key, 1000);
    const r = await new Promise<{ current: number; ttl: number }>((resolve, reject) => store.read(key, (err, res) => (err ? reject(err) : resolve(res!))));
    expect(r.current).toBe(2);
    expect(r.ttl).toBeGreaterThan(0);
    expect(await redis.get(prefix + key)).toBe('10');
  });
});
