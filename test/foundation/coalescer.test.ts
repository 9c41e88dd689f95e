// Pure logic: how concurrent calls are grouped into batches (db/coalescer.ts). The statement it
// batches is tested against PostgreSQL in test/predictions/create-batching.test.ts.
import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../src/db/coalescer.js';

/** A run whose batches finish only when the test says so. */
function gated() {
  const calls: Array<{ items: readonly number[]; finish: (fail?: Error) => void }> = [];
  const run = (items: readonly number[]) =>
    new Promise<readonly string[]>((resolve, reject) => {
      calls.push({ items, finish: (fail) => (fail ? reject(fail) : resolve(items.map((i) => `r${i}`))) });
    });
  return { calls, run };
}
const tick = () => new Promise((r) => setImmediate(r));

describe('Coalescer', () => {
  it('runs a call at once and alone while a slot is free', async () => {
    const g = gated();
    const c = new Coalescer(g.run, { maxInFlight: 2, maxBatch: 10 });
    const a = c.submit(1);
    const b = c.submit(2);
    await tick();
    expect(g.calls.map((x) => x.items)).toEqual([[1], [2]]);
    g.calls[0]!.finish();
    g.calls[1]!.finish();
    expect(await Promise.all([a, b])).toEqual(['r1', 'r2']);
  });

  it('puts the calls made while every slot is busy into the next batch, in order, each getting its own result', async () => {
    const g = gated();
    const c = new Coalescer(g.run, { maxInFlight: 1, maxBatch: 10 });
    const first = c.submit(1);
    const rest = [2, 3, 4, 5].map((i) => c.submit(i));
    await tick();
    expect(g.calls.map((x) => x.items)).toEqual([[1]]);
    g.calls[0]!.finish();
    expect(await first).toBe('r1');
    await tick();
    expect(g.calls.map((x) => x.items)).toEqual([[1], [2, 3, 4, 5]]);
    g.calls[1]!.finish();
    expect(await Promise.all(rest)).toEqual(['r2', 'r3', 'r4', 'r5']);
    expect(c.stats).toMatchObject({ batches: 2, items: 5, largest: 4, split: 0 });
  });

  it('never puts more than maxBatch calls in one batch', async () => {
    const g = gated();
    const c = new Coalescer(g.run, { maxInFlight: 1, maxBatch: 3 });
    const all = [1, 2, 3, 4, 5, 6, 7].map((i) => c.submit(i));
    for (let k = 0; k < 3; k++) {
      await tick();
      g.calls[k]!.finish();
    }
    expect(await Promise.all(all)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7']);
    expect(g.calls.map((x) => x.items)).toEqual([[1], [2, 3, 4], [5, 6, 7]]);
  });

  it('when a batch fails, runs its calls one by one: the bad one fails alone', async () => {
    const seen: number[][] = [];
    const c = new Coalescer<number, string>(async (items) => {
      seen.push([...items]);
      if (items.includes(3)) throw new Error(items.length > 1 ? 'batch failed' : 'item 3 is bad');
      return items.map((i) => `r${i}`);
    }, { maxInFlight: 1, maxBatch: 10 });
    const first = c.submit(1);
    const rest = [2, 3, 4].map((i) => c.submit(i).catch((e: Error) => e.message));
    expect(await first).toBe('r1');
    expect(await Promise.all(rest)).toEqual(['r2', 'item 3 is bad', 'r4']);
    expect(seen).toEqual([[1], [2, 3, 4], [2], [3], [4]]);
    expect(c.stats.split).toBe(1);
  });

  it('treats a batch answering with the wrong number of results as failed', async () => {
    let n = 0;
    const c = new Coalescer<number, string>(async (items) => (n++ === 1 ? ['only one'] : items.map((i) => `r${i}`)), { maxInFlight: 1, maxBatch: 10 });
    const all = [1, 2, 3].map((i) => c.submit(i));
    expect(await Promise.all(all)).toEqual(['r1', 'r2', 'r3']);
    expect(c.stats.split).toBe(1);
  });

  it('refuses limits below one', () => {
    expect(() => new Coalescer(async () => [], { maxInFlight: 0, maxBatch: 1 })).toThrow(RangeError);
  });
});
