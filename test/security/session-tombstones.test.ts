// A request that read a session (from the database or Redis) just before it was revoked must not
// put it back into the caches afterwards (cache/sessions.ts, tombstones). Before, "log out
// everywhere" racing a request of the same session re-cached the revoked session in Redis for its
// whole idle lifetime, and every api process accepted it from there.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SessionStore, type CachedSession } from '../../src/cache/sessions.js';
import { keys } from '../../src/cache/keys.js';
import { TEST_REDIS_URL } from '../helpers/env.js';

const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 2 });
afterAll(() => redis.disconnect());

const key = randomBytes(32);
const store = () => new SessionStore(redis, 3600, 5_000, async () => key);
const session = (): CachedSession => ({ sid: randomBytes(8).toString('hex'), uid: 'u', role: 'user', tenant: null, org: null, exp: Date.now() + 3_600_000, w: Date.now() });
const hash = () => randomBytes(32).toString('hex');

describe('session tombstones', () => {
  it('a put arriving after the drop (a request that read the session before) caches nothing', async () => {
    const s = store();
    const h = hash();
    await s.put(h, session());
    expect(await s.get(h)).not.toBeNull();
    await s.drop([h]);
    // The late write of the in-flight request:
    await s.put(h, session());
    expect(await redis.exists(keys.session(h))).toBe(0);
    expect(await s.get(h)).toBeNull();
  });

  it('another api process drops on the revocation notice, and its own late put is refused too', async () => {
    const a = store();
    const b = store();
    const h = hash();
    await b.put(h, session());
    expect(await b.get(h)).not.toBeNull();
    await a.drop([h]); // the process that revoked
    await b.drop([h]); // b, on the NOTIFY
    await b.put(h, session()); // b's request in flight since before the revocation
    expect(await redis.exists(keys.session(h))).toBe(0);
    expect(await a.get(h)).toBeNull();
    expect(await b.get(h)).toBeNull();
  });

  it('a read that Redis answered with the old copy after the drop is refused', async () => {
    const s = store();
    const h = hash();
    await s.put(h, session());
    s.forgetLocal();
    // Start a read, then drop before its answer is used: the copy read is the revoked one.
    const reading = s.get(h);
    await s.drop([h]);
    expect(await reading).toBeNull();
    expect(await s.get(h)).toBeNull();
  });

  it('other sessions are untouched', async () => {
    const s = store();
    const [h1, h2] = [hash(), hash()];
    await s.put(h1, session());
    await s.put(h2, session());
    await s.drop([h1]);
    expect(await s.get(h2)).not.toBeNull();
    expect(await redis.exists(keys.session(h2))).toBe(1);
  });
});
